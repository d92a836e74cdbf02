/**
 * Residual vector quantization as pure functions, reproducing the quantizer.tflite graph
 * operation for operation in float32 (Math.fround after every op), so codes are identical
 * to TFLite's, without an onnxruntime session.
 *
 * The graph's residual update is the straight-through form r' = r - (r + (q - r)), which is
 * not exactly r - q in float32; it is kept as is.
 */
export interface Codebooks {
  stages: number;
  entries: number;
  dims: number;
  /** [stages, entries, dims] row-major. */
  data: Float32Array;
}

const fr = Math.fround;

/**
 * Codes for one frame of features: Int32Array(stages), code k in [0, entries) for the first
 * `numQuantizers` stages and -1 beyond (the residual still runs through every stage, like the graph).
 * @example const codes = rvqEncode(books, features, 30); // 6 kbps
 */
export function rvqEncode(books: Codebooks, features: Float32Array, numQuantizers: number): Int32Array {
  const { stages, entries, dims, data } = books;
  const r = Float32Array.from(features.subarray(0, dims));
  const codes = new Int32Array(stages);
  for (let s = 0; s < stages; s++) {
    const base = s * entries * dims;
    let best = 0;
    let bestD = Infinity;
    for (let k = 0; k < entries; k++) {
      let d = 0;
      const row = base + k * dims;
      for (let j = 0; j < dims; j++) {
        const diff = fr(r[j]! - data[row + j]!);
        d = fr(d + fr(diff * diff));
      }
      if (d < bestD) [best, bestD] = [k, d]; // first minimum, like ARG_MIN
    }
    const row = base + best * dims;
    for (let j = 0; j < dims; j++) {
      const sub = fr(data[row + j]! - r[j]!);
      const add = fr(r[j]! + sub);
      r[j] = fr(r[j]! - add);
    }
    codes[s] = s < numQuantizers ? best : -1;
  }
  return codes;
}

/** Features from codes: the sum of the chosen entries of stages whose code is not -1, in stage order. */
export function rvqDecode(books: Codebooks, codes: Int32Array): Float32Array {
  const { stages, entries, dims, data } = books;
  const out = new Float32Array(dims);
  for (let s = 0; s < Math.min(stages, codes.length); s++) {
    const c = codes[s]!;
    if (c < 0) continue;
    if (c >= entries) throw new RangeError(`code ${c} at stage ${s} is beyond ${entries} entries`);
    const row = (s * entries + c) * dims;
    for (let j = 0; j < dims; j++) out[j] = fr(out[j]! + data[row + j]!);
  }
  return out;
}
