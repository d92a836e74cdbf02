/**
 * A stored linear weight (linear.ts: fp32, int8 per channel, MatMulNBits blocks) <-> its sparse
 * encoding (sparse-encoding.ts) over the form's own elements, so sparsity composes with every
 * quantization: the masked weights' codes are each form's fill (fp32: +0.0 bits; int8: 0;
 * MatMulNBits: the block's zero point), and scales / zero points are stored dense beside them.
 *
 *   form    elements [rows, cols]                                        fill         values
 *   f32     [N, K]:   bits of W[k, n]                                   0 (+0.0)     Float32Array [count]
 *   int8    [N, K]:   b[k, n] as a byte                                 0            Int8Array [count]
 *   nbits   [N, Kp]:  code k of column n (Kp = K padded to whole blocks)  zero point   Uint8Array, packed like B
 *
 * @example
 * const s = encodeSparseLinear(w, K, N, '2:4');            // { index, values }
 * const back = decodeSparseLinear(s.index, s.values, like, K, N, '2:4', 'layers.0.qkv'); // = w
 */
import { WhittleError } from '../../core/errors.ts';
import { blockCount, zeroPointBytes, type BlockwiseWeight, type NBits } from './blockwise.ts';
import type { LinearWeight } from './linear.ts';
import { decodeSparse, encodeSparse, popcount, type FillOf } from './sparse-encoding.ts';
import type { SparsityPattern } from './sparsity-select.ts';

export type SparseValues = Float32Array | Int8Array | Uint8Array;

/** Bytes of `count` stored values of a form. */
export const sparseValueBytes = (count: number, bits: 32 | 8 | 4): number => (bits === 4 ? Math.ceil(count / 2) : (count * bits) / 8);

/** The zero point of block j of column n, from MatMulNBits' packed zero points. */
export function zeroPointOf(q: Pick<BlockwiseWeight, 'bits' | 'zeroPoints'>, zpBytes: number): (n: number, j: number) => number {
  return q.bits === 8 ? (n, j) => q.zeroPoints[n * zpBytes + j]! : (n, j) => (q.zeroPoints[n * zpBytes + (j >> 1)]! >> ((j & 1) * 4)) & 15;
}

export function unpackCodes(b: Uint8Array, count: number, bits: NBits): Uint32Array {
  const out = new Uint32Array(count);
  if (bits === 8) out.set(b.subarray(0, count));
  else for (let i = 0; i < count; i++) out[i] = (b[i >> 1]! >> ((i & 1) * 4)) & 15;
  return out;
}

export function packCodes(codes: Uint32Array, bits: NBits): Uint8Array {
  if (bits === 8) return Uint8Array.from(codes);
  const out = new Uint8Array(Math.ceil(codes.length / 2));
  for (let i = 0; i < codes.length; i++) out[i >> 1]! |= codes[i]! << ((i & 1) * 4);
  return out;
}

/** One stored linear W [K, N] -> its sparse index and kept values (throws INVALID_ARGUMENT when '2:4' does not hold). */
export function encodeSparseLinear(w: LinearWeight, K: number, N: number, pattern: SparsityPattern): { index: Uint8Array; values: SparseValues } {
  if (w instanceof Float32Array || w.kind === 'int8') {
    const src = w instanceof Float32Array ? new Uint32Array(w.buffer, w.byteOffset, w.length) : new Uint8Array(w.weight.b.buffer, w.weight.b.byteOffset, w.weight.b.length);
    const codes = new Uint32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) codes[n * K + k] = src[k * N + n]!;
    const { index, values } = encodeSparse(codes, () => 0, N, K, pattern);
    return { index, values: w instanceof Float32Array ? new Float32Array(values.buffer) : Int8Array.from(values, (v) => (v << 24) >> 24) };
  }
  const q = w.weight;
  const nBlocks = blockCount(K, q.blockSize);
  const Kp = nBlocks * q.blockSize;
  const zp = zeroPointOf(q, zeroPointBytes(nBlocks, q.bits));
  const fill: FillOf = (n, k) => zp(n, Math.floor(k / q.blockSize));
  const { index, values } = encodeSparse(unpackCodes(q.b, N * Kp, q.bits), fill, N, Kp, pattern);
  return { index, values: packCodes(values, q.bits) };
}

/**
 * index + values (+ the form's dense scales / zero points, given in `like`) -> the stored linear.
 * `like` names the form: 'f32', { kind: 'int8', scales }, or { kind: 'nbits', ... } without b.
 * Malformed data is BAD_MODEL naming `what`.
 */
export function decodeSparseLinear(
  index: Uint8Array,
  values: SparseValues,
  like: 'f32' | { kind: 'int8'; scales: Float32Array } | { kind: 'nbits'; bits: NBits; blockSize: BlockwiseWeight['blockSize']; scales: Float32Array; zeroPoints: Uint8Array; accuracyLevel: 1 | 4 },
  K: number,
  N: number,
  pattern: SparsityPattern,
  what: string,
): LinearWeight {
  if (like === 'f32' || like.kind === 'int8') {
    const vals = like === 'f32' ? new Uint32Array((values as Float32Array).buffer, values.byteOffset, values.length) : new Uint8Array(values.buffer, values.byteOffset, values.length);
    const codes = decodeSparse(index, vals, () => 0, N, K, pattern, what);
    if (like === 'f32') {
      const out = new Uint32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) out[k * N + n] = codes[n * K + k]!;
      return new Float32Array(out.buffer);
    }
    const b = new Int8Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) b[k * N + n] = (codes[n * K + k]! << 24) >> 24;
    return { kind: 'int8', weight: { K, N, b, scales: like.scales } };
  }
  const { bits, blockSize } = like;
  const nBlocks = blockCount(K, blockSize);
  const Kp = nBlocks * blockSize;
  const zp = zeroPointOf(like, zeroPointBytes(nBlocks, bits));
  // Packed 4-bit values do not say their count (an odd one leaves half a byte): the index does.
  const count = pattern === '2:4' ? (N * Kp) / 2 : popcount(index);
  if (values.length !== sparseValueBytes(count, bits)) throw new WhittleError('BAD_MODEL', `${what}: the index stores ${count} values, the file has ${values.length} bytes of them`, { tensor: what });
  const codes = decodeSparse(index, unpackCodes(values as Uint8Array, count, bits), (n, k) => zp(n, Math.floor(k / blockSize)), N, Kp, pattern, what);
  return { kind: 'nbits', accuracyLevel: like.accuracyLevel, weight: { K, N, bits, blockSize, b: packCodes(codes, bits), scales: like.scales, zeroPoints: like.zeroPoints } };
}
