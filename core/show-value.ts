/**
 * A value from a hostile file, for an error message, without recursing into it: JSON.stringify or
 * join on a value nested 100,000 deep overflows the stack, and that RangeError would replace the
 * typed error being built. Strings are cut at 80 characters.
 *
 * @example
 * throw new WhittleError('BAD_MODEL', `data_offsets ${showValue(offsets)} are not two integers`);
 */
export function showValue(v: unknown): string {
  if (Array.isArray(v)) return `[${v.length} items]`;
  if (typeof v === 'object' && v !== null) return '{object}';
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
  return String(v);
}
