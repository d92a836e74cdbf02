/**
 * TEST-ONLY (pure, browser-safe): a copy of a .tflite file whose subgraph 0 outputs `tensors`
 * instead of its own outputs, so the oracle returns intermediate tensors (tracing a model layer
 * by layer against TFLite). The new outputs vector is appended at the end of the file and the
 * subgraph's `outputs` field is re-pointed to it: FlatBuffers offsets point forward, and nothing
 * else in the file moves.
 */
export function withSubgraphOutputs(file: Uint8Array, tensors: number[]): Uint8Array {
  const pad = (4 - (file.length % 4)) % 4;
  const out = new Uint8Array(file.length + pad + 4 + 4 * tensors.length);
  out.set(file);
  const v = new DataView(out.buffer);
  // The absolute position of field `i` of the table at `table`, or 0 when absent.
  const field = (table: number, i: number) => {
    const vtable = table - v.getInt32(table, true);
    if (4 + 2 * i >= v.getUint16(vtable, true)) return 0;
    const at = v.getUint16(vtable + 4 + 2 * i, true);
    return at ? table + at : 0;
  };
  const root = v.getUint32(0, true);
  const subgraphsField = field(root, 2); // Model.subgraphs
  if (!subgraphsField) throw new Error('withSubgraphOutputs: no subgraphs');
  const subgraphs = subgraphsField + v.getUint32(subgraphsField, true);
  const first = subgraphs + 4;
  const subgraph = first + v.getUint32(first, true);
  const outputsField = field(subgraph, 2); // SubGraph.outputs
  if (!outputsField) throw new Error('withSubgraphOutputs: subgraph 0 has no outputs field');
  const vector = file.length + pad;
  v.setUint32(vector, tensors.length, true);
  tensors.forEach((t, k) => v.setInt32(vector + 4 + 4 * k, t, true));
  v.setUint32(outputsField, vector - outputsField, true);
  return out;
}
