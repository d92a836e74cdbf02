/**
 * A variant file's parts (writeVariant, exportVariant: header, then one part per tensor) as the
 * one file they make, for tests that read it back.
 *
 * @example
 * const file = joinParts(writeVariant(stored, setting, source));
 */
export function joinParts(parts: readonly ArrayBuffer[]): ArrayBuffer {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(new Uint8Array(p), o);
    o += p.byteLength;
  }
  return out.buffer;
}
