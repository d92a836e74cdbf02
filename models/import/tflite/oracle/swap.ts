/** Pure (browser-safe) part of the TFLite oracle harness. */
/**
 * A copy of a .tflite file whose subgraph vector has entries `a` and `b` swapped (the
 * subgraph tables themselves are untouched). FlatBuffers vector entries are offsets
 * relative to their own position, so each entry is rewritten to point at the other table.
 */
export function swapSubgraphs(file: Uint8Array, a: number, b: number): Uint8Array {
  const out = file.slice();
  const v = new DataView(out.buffer);
  const root = v.getUint32(0, true);
  const vt = root - v.getInt32(root, true);
  const fieldOff = v.getUint16(vt + 4 + 2 * 2, true); // Model field 2 = subgraphs
  const fieldPos = root + fieldOff;
  const vec = fieldPos + v.getUint32(fieldPos, true);
  const posA = vec + 4 + 4 * a;
  const posB = vec + 4 + 4 * b;
  const targetA = posA + v.getUint32(posA, true);
  const targetB = posB + v.getUint32(posB, true);
  v.setUint32(posA, targetB - posA, true);
  v.setUint32(posB, targetA - posB, true);
  return out;
}
