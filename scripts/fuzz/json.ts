/**
 * The structure-aware JSON mutator: a real document (config.json, a manifest, tokenizer.json)
 * with a few of its values replaced by hostile ones, keys deleted or added, types swapped,
 * nesting thousands deep, huge arrays and Unicode edge cases; then, sometimes, the text itself
 * damaged. Containers are copied only along the edited path, so a 2 MB tokenizer.json costs
 * microseconds per case, not a deep clone.
 */
import { mutateBytes } from './bytes.ts';
import { HOSTILE_NUMBER_LITERALS, hostileNumber, hostileString } from './hostile.ts';
import { chance, int, pick, type Rng } from './rand.ts';

type Obj = Record<string, unknown>;

export interface JsonMutateOptions {
  /** Keys worth adding (the schema's own: a parser reads these). */
  keys?: readonly string[];
  /** Most edits per case (default 4). */
  maxEdits?: number;
}

/** Placeholders JSON.stringify keeps as strings; resolved into raw JSON text afterwards. */
const NUM = (literal: string) => `@@NUM(${literal})@@`;
const DEEP = (depth: number, open: '[' | '{') => `@@DEEP(${depth}${open})@@`;

function resolvePlaceholders(text: string): string {
  return text
    .replace(/"@@NUM\(([^)]*)\)@@"/g, (_, literal: string) => literal)
    .replace(/"@@DEEP\((\d+)([[{])\)@@"/g, (_, depth: string, open: string) => {
      const n = Number(depth);
      return open === '[' ? `${'['.repeat(n)}1${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
    });
}

/** A hostile replacement value (as it will serialize). */
function hostileValue(rng: Rng, keys: readonly string[]): unknown {
  switch (int(rng, 0, 11)) {
    case 0:
    case 1:
    case 2:
      return NUM(pick(rng, HOSTILE_NUMBER_LITERALS));
    case 3:
      return hostileNumber(rng); // NaN / Infinity serialize as null: also worth sending
    case 4:
    case 5:
      return hostileString(rng);
    case 6:
      return pick(rng, [null, true, false, [], {}, [null], { '': null }]);
    case 7:
      return DEEP(pick(rng, [64, 1000, 10_000, 100_000]), pick(rng, ['[', '{'] as const));
    case 8: // a long array of one small value
      return new Array(pick(rng, [1000, 100_000])).fill(pick(rng, [0, 'a', null, NUM('1e999')]));
    case 9: // an object with many keys
      return Object.fromEntries(Array.from({ length: pick(rng, [100, 10_000]) }, (_, i) => [`k${i}`, i]));
    case 10:
      return keys.length > 0 ? Object.fromEntries([[pick(rng, keys), NUM(pick(rng, HOSTILE_NUMBER_LITERALS))]]) : {};
    default:
      return [NUM(pick(rng, HOSTILE_NUMBER_LITERALS)), hostileString(rng)];
  }
}

const isContainer = (v: unknown): v is Obj | unknown[] => typeof v === 'object' && v !== null;

function shallowCopy(v: Obj | unknown[]): Obj | unknown[] {
  return Array.isArray(v) ? v.slice() : { ...v };
}

/** One edit somewhere below `root` (a random walk down), copying only the containers it passes. */
function editOnce(rng: Rng, root: unknown, keys: readonly string[]): unknown {
  if (!isContainer(root) || chance(rng, 0.03)) return hostileValue(rng, keys);
  const top = shallowCopy(root);
  let node: Obj | unknown[] = top;
  for (let depth = 0; depth < 64; depth++) {
    const childKeys: (string | number)[] = Array.isArray(node) ? node.map((_, i) => i) : Object.keys(node);
    // Keys are listed per step: fine for the tens of keys of configs; tokenizer vocabularies are
    // walked past quickly because the walk stops at each level with probability 1/3.
    if (childKeys.length === 0 || chance(rng, 0.33)) {
      applyAt(rng, node, keys);
      return top;
    }
    const k = pick(rng, childKeys);
    const child = (node as Record<string | number, unknown>)[k];
    if (!isContainer(child)) {
      (node as Record<string | number, unknown>)[k] = mutateScalar(rng, child, keys);
      return top;
    }
    const copy = shallowCopy(child);
    (node as Record<string | number, unknown>)[k] = copy;
    node = copy;
  }
  return top;
}

function mutateScalar(rng: Rng, value: unknown, keys: readonly string[]): unknown {
  if (typeof value === 'number' && chance(rng, 0.5)) {
    return pick<string>(rng, [
      NUM(String(-value)),
      NUM(`${value}e300`),
      NUM(String(value * 2 ** 32)),
      NUM(String(value + 0.5)),
      NUM(String(value - 1)),
      String(value),
    ]);
  }
  if (typeof value === 'string' && chance(rng, 0.5)) {
    return pick<string>(rng, [
      value + pick(rng, ['/..', '\u0000', '💥', '\ud800']),
      value.repeat(int(rng, 2, 1000)),
      value.slice(0, int(rng, 0, value.length)),
      value.toUpperCase(),
    ]);
  }
  return hostileValue(rng, keys);
}

function applyAt(rng: Rng, node: Obj | unknown[], keys: readonly string[]): void {
  if (Array.isArray(node)) {
    const op = int(rng, 0, 3);
    if (op === 0 && node.length > 0) node.splice(int(rng, 0, node.length - 1), 1);
    else if (op === 1 && node.length > 0) node.push(...new Array<unknown>(int(rng, 1, 64)).fill(pick(rng, node)));
    else if (op === 2) node.push(hostileValue(rng, keys));
    else node.length = int(rng, 0, node.length);
    return;
  }
  const own = Object.keys(node);
  const op = int(rng, 0, 2);
  if (op === 0 && own.length > 0) delete node[pick(rng, own)];
  else if (op === 1 || own.length === 0)
    node[keys.length > 0 && chance(rng, 0.8) ? pick(rng, keys) : hostileString(rng)] = hostileValue(rng, keys);
  else node[pick(rng, own)] = hostileValue(rng, keys);
}

/** JSON text of `seed` after a few structure-aware edits; 10% of the time also byte-damaged. */
export function mutateJsonText(rng: Rng, seed: unknown, options: JsonMutateOptions = {}): string {
  let value = seed;
  const edits = int(rng, 1, options.maxEdits ?? 4);
  for (let e = 0; e < edits; e++) value = editOnce(rng, value, options.keys ?? []);
  const text = resolvePlaceholders(JSON.stringify(value) ?? 'null');
  if (!chance(rng, 0.1)) return text;
  const damaged = mutateBytes(rng, new TextEncoder().encode(text), { maxEdits: 3 });
  return new TextDecoder().decode(damaged);
}

/**
 * A mutated document as a value, for APIs that take parsed JSON (or a caller's object): parsed
 * from mutateJsonText, and sometimes given values only JavaScript can hold (NaN, -0, undefined,
 * a bigint). Text that JSON.parse itself refuses (damaged bytes, nesting past V8's stack) never
 * reaches such an API (its caller's JSON.parse fails first), so another edit is tried instead.
 * `bytes` is the length of the text it came from.
 */
export function mutateJsonValue(rng: Rng, seed: unknown, options: JsonMutateOptions = {}): { value: unknown; bytes: number } {
  let value: unknown = seed;
  let bytes = 0;
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      // Either step may throw: a repeated string past V8's string length, nesting past its stack.
      const text = mutateJsonText(rng, seed, options);
      value = JSON.parse(text);
      bytes = text.length;
      break;
    } catch {
      // try another edit
    }
  }
  if (chance(rng, 0.1) && isContainer(value)) {
    const target = value as Obj;
    const own = Object.keys(target);
    const key = own.length > 0 && chance(rng, 0.7) ? pick(rng, own) : pick(rng, options.keys ?? ['x']);
    target[key] = pick(rng, [NaN, Infinity, -Infinity, -0, undefined, 1n, Number.MIN_VALUE]);
  }
  return { value, bytes };
}
