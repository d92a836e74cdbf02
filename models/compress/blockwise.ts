/**
 * Per-block asymmetric round-to-nearest quantization of a linear weight, packed exactly as
 * onnxruntime's `com.microsoft.MatMulNBits` reads it, and its dequantization.
 *
 * The layout (onnxruntime docs/ContribOperators.md, com.microsoft.MatMulNBits; the CPU and
 * WebGPU kernels agree), for a weight W that the op multiplies as Y = A @ W with A [.., K]:
 *   n_blocks  = ceil(K / block_size)            blocks run along K, separately for each column n
 *   blob_size = block_size * bits / 8           bytes per block
 *   B           uint8   [N, n_blocks, blob_size]  row n of B is column n of W (i.e. W^T, the torch
 *                                                 [out, in] layout), quantized block by block
 *   scales      float32 [N * n_blocks]            scale of block j of column n at n * n_blocks + j
 *   zero_points uint8   [N * ceil(n_blocks * bits / 8)]  packed like B, each column n starting
 *                                                 on a fresh byte: for 4 bits block j of column n
 *                                                 sits in byte n * ceil(n_blocks / 2) + (j >> 1)
 *   dequantized W[k, n] = (q[n, k] - zero_point[n, k / block_size]) * scale[n, k / block_size]
 * Bit packing: values are laid out little-end first. 4 bits: element 2i in the low nibble of
 * byte i, element 2i + 1 in the high nibble. 8 bits: one byte per element.
 * When K is not a multiple of block_size the last block is padded; its pad elements get the
 * zero point (they dequantize to 0, and the op ignores k >= K anyway).
 *
 * Why asymmetric min/max per block: LLM weight blocks are rarely centred, and the zero point
 * costs only 4 or 8 bits per block; round-to-nearest with the real min/max (not widened to
 * include 0) keeps every weight within scale / 2 of its original.
 *
 * @example
 * const q = quantizeBlockwise(w, 576, 1536, 4, 32); // w [576, 1536] as MatMul's B
 * const back = dequantizeBlockwise(q);               // [576, 1536], |back - w| <= scale / 2 per block
 */
import { WhittleError } from '../../core/errors.ts';

export type NBits = 4 | 8;
export type BlockSize = 32 | 64 | 128;

/** One weight in MatMulNBits' packed form; `K`, `N`, `bits`, `blockSize` are the op's attributes. */
export interface BlockwiseWeight {
  K: number;
  N: number;
  bits: NBits;
  blockSize: BlockSize;
  /** uint8 [N, nBlocks, blockSize * bits / 8] */
  b: Uint8Array;
  /** float32 [N * nBlocks] */
  scales: Float32Array;
  /** uint8 [N * ceil(nBlocks * bits / 8)] */
  zeroPoints: Uint8Array;
}

export const blockCount = (K: number, blockSize: number): number => Math.ceil(K / blockSize);
export const blobBytes = (blockSize: number, bits: NBits): number => (blockSize * bits) / 8;
/** Bytes of packed zero points per column: whole bytes per column, as the kernels index them. */
export const zeroPointBytes = (nBlocks: number, bits: NBits): number => Math.ceil((nBlocks * bits) / 8);

function checkArgs(w: Float32Array, K: number, N: number, bits: number, blockSize: number): void {
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1 || w.length !== K * N) {
    throw new WhittleError('INVALID_ARGUMENT', `weight has ${w.length} values, not K * N = ${K} * ${N}`, { K, N, length: w.length });
  }
  if (bits !== 4 && bits !== 8) throw new WhittleError('INVALID_ARGUMENT', `bits must be 4 or 8, not ${bits}`, { bits });
  if (blockSize !== 32 && blockSize !== 64 && blockSize !== 128) {
    throw new WhittleError('INVALID_ARGUMENT', `block size must be 32, 64 or 128, not ${blockSize}`, { blockSize });
  }
}

/** Writes `value` (< 2^bits) as element `index` of a bit-packed byte array. */
function pack(out: Uint8Array, byteBase: number, index: number, value: number, bits: NBits): void {
  if (bits === 8) out[byteBase + index] = value;
  else out[byteBase + (index >> 1)]! |= (index & 1) === 0 ? value : value << 4;
}

function unpack(src: Uint8Array, byteBase: number, index: number, bits: NBits): number {
  if (bits === 8) return src[byteBase + index]!;
  const byte = src[byteBase + (index >> 1)]!;
  return (index & 1) === 0 ? byte & 0x0f : byte >> 4;
}

/**
 * Scale and zero point of one block from its min and max. A constant block (max == min) gets a
 * scale that represents its one value exactly, rather than a division by zero.
 */
function blockParams(lo: number, hi: number, qmax: number): { scale: number; zp: number } {
  if (hi === lo) {
    if (lo === 0) return { scale: 1, zp: 0 };
    return lo > 0 ? { scale: Math.fround(lo), zp: 0 } : { scale: Math.fround(-lo), zp: 1 };
  }
  const scale = Math.fround((hi - lo) / qmax);
  // lo / scale + zp is within 0.5 of 0 and hi / scale + zp within 0.5 of qmax, so no value clamps
  // by more than rounding: the error bound scale / 2 holds for every element.
  const zp = Math.min(qmax, Math.max(0, Math.round(-lo / scale)));
  return { scale, zp };
}

/**
 * Quantizes W (float32 [K, N] row-major, MatMul's B: in features by out features) per block of
 * `blockSize` consecutive k for each column n, to `bits` bits with a per-block zero point.
 */
export function quantizeBlockwise(w: Float32Array, K: number, N: number, bits: NBits, blockSize: BlockSize): BlockwiseWeight {
  checkArgs(w, K, N, bits, blockSize);
  const qmax = (1 << bits) - 1;
  const nBlocks = blockCount(K, blockSize);
  const blob = blobBytes(blockSize, bits);
  const zpBytes = zeroPointBytes(nBlocks, bits);
  const b = new Uint8Array(N * nBlocks * blob);
  const scales = new Float32Array(N * nBlocks);
  const zeroPoints = new Uint8Array(N * zpBytes);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nBlocks; j++) {
      const k0 = j * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      let lo = Infinity;
      let hi = -Infinity;
      for (let k = k0; k < k1; k++) {
        const v = w[k * N + n]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const { scale, zp } = blockParams(lo, hi, qmax);
      scales[n * nBlocks + j] = scale;
      pack(zeroPoints, n * zpBytes, j, zp, bits);
      const base = (n * nBlocks + j) * blob;
      for (let i = 0; i < blockSize; i++) {
        const k = k0 + i;
        // Pad elements past K take the zero point: they dequantize to exactly 0.
        const q = k < k1 ? Math.min(qmax, Math.max(0, Math.round(w[k * N + n]! / scale) + zp)) : zp;
        pack(b, base, i, q, bits);
      }
    }
  }
  return { K, N, bits, blockSize, b, scales, zeroPoints };
}

/** float32 [K, N]: what MatMulNBits multiplies by, computed from the packed form alone. */
export function dequantizeBlockwise(q: BlockwiseWeight): Float32Array {
  const { K, N, bits, blockSize } = q;
  const nBlocks = blockCount(K, blockSize);
  const blob = blobBytes(blockSize, bits);
  const zpBytes = zeroPointBytes(nBlocks, bits);
  if (q.b.length !== N * nBlocks * blob || q.scales.length !== N * nBlocks || q.zeroPoints.length !== N * zpBytes) {
    throw new WhittleError('INVALID_ARGUMENT', `packed weight sizes do not match K ${K}, N ${N}, ${bits} bits, block ${blockSize}`);
  }
  const out = new Float32Array(K * N);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < nBlocks; j++) {
      const scale = q.scales[n * nBlocks + j]!;
      const zp = unpack(q.zeroPoints, n * zpBytes, j, bits);
      const base = (n * nBlocks + j) * blob;
      const k0 = j * blockSize;
      const k1 = Math.min(K, k0 + blockSize);
      for (let k = k0; k < k1; k++) out[k * N + n] = (unpack(q.b, base, k - k0, bits) - zp) * scale;
    }
  }
  return out;
}
