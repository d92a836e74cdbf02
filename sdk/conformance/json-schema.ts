/**
 * A small JSON Schema validator for the keywords the conformance report's schema uses (type,
 * const, enum, required, properties, additionalProperties, items, minItems, minimum, minLength):
 * enough to check a report without a schema library in the package. Unknown keywords are an
 * error, so the schema cannot silently outgrow it.
 *
 * @example
 * validateJsonSchema(report, CONFORMANCE_REPORT_SCHEMA); // [] or ['$.checks[2].status: not one of pass, fail, skip']
 */
type Schema = Record<string, unknown>;

const KNOWN = new Set([
  '$schema',
  '$id',
  'title',
  'type',
  'const',
  'enum',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'minItems',
  'minimum',
  'minLength',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v;
}

function hasType(v: unknown, type: string): boolean {
  if (type === 'integer') return Number.isInteger(v);
  if (type === 'number') return typeof v === 'number' && Number.isFinite(v);
  return typeOf(v) === type;
}

/**
 * The places where `value` breaks `schema`, as JSONPath-like messages (empty: valid).
 *
 * @example
 * validateJsonSchema({ a: 1 }, { type: 'object', required: ['b'] }); // ['$: missing b']
 */
export function validateJsonSchema(value: unknown, schema: Schema, path = '$'): string[] {
  const errors: string[] = [];
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`validateJsonSchema: unsupported keyword ${k} at ${path}`);
  if (typeof schema.type === 'string' && !hasType(value, schema.type)) return [`${path}: expected ${schema.type}, got ${typeOf(value)}`];
  if ('const' in schema && value !== schema.const) errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) errors.push(`${path}: not one of ${schema.enum.join(', ')}`);
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum)
    errors.push(`${path}: below ${schema.minimum}`);
  if (typeof schema.minLength === 'number' && typeof value === 'string' && value.length < schema.minLength)
    errors.push(`${path}: shorter than ${schema.minLength}`);
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (schema.items) value.forEach((item, i) => errors.push(...validateJsonSchema(item, schema.items as Schema, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) errors.push(`${path}: missing ${r}`);
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) errors.push(...validateJsonSchema(v, props[k], `${path}.${k}`));
      else if (schema.additionalProperties === false) errors.push(`${path}: unexpected property ${k}`);
    }
  }
  return errors;
}
