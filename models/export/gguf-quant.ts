/**
 * llama.cpp's block formats Q8_0 and Q4_0 (ggml-quants.c `quantize_row_q8_0_ref`,
 * `quantize_row_q4_0_ref` and their `dequantize_row_*`), and the IEEE fp16 their scales use.
 * Blocks of 32 consecutive values along a row:
 *   Q8_0: fp16 d, int8 q[32]           (34 bytes); d = max|x| / 127, q = round(x / d), x ≈ d*q
 *   Q4_0: fp16 d, u8 nibbles[16]       (18 bytes); d = m / -8 where m is the value of largest |x|
 *         (sign kept), q = min(15, trunc(x/d + 8.5)), x ≈ d*(q - 8); byte j holds value j in
 *         its low nibble and value j + 16 in its high nibble.
 * The arithmetic is done in float32 (Math.fround) as the C code does, so the bytes match what
 * llama.cpp's own quantizer writes for the same floats. Rows whose width is not a multiple of 32
 * cannot be stored in these formats; gguf.ts keeps those tensors F32.
 *
 * @example
 * const bytes = quantizeQ8_0(row); // row.length % 32 === 0
 */
import { WhittleError } from '../../core/errors.ts';

export const QK = 32;
export const Q8_0_BLOCK_BYTES = 2 + QK;
export const Q4_0_BLOCK_BYTES = 2 + QK / 2;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> IEEE half bits, round to nearest even (as ggml's software conversion). */
export function fp32ToFp16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // too large: inf
  if (e <= 0) {
    // A half subnormal (or zero): m * 2^-24 with m = (1.mant) * 2^(e - 14 + 23) in mantissa units.
    if (e < -10) return sign;
    const full = mant | 0x800000;
    const shift = 14 - e;
    let half = full >>> shift;
    const rem = full & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && (half & 1) === 1)) half++;
    return sign | half;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry out of the mantissa moves into the exponent, which is the correctly rounded result.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** IEEE half bits -> number. */
export function fp16ToFp32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function checkBlocks(x: Float32Array, what: string): number {
  if (x.length % QK !== 0) throw new WhittleError('INVALID_ARGUMENT', `${what}: ${x.length} values are not whole blocks of ${QK}`);
  return x.length / QK;
}

/** C's roundf: halves away from zero. */
const roundAway = (v: number) => (v < 0 ? -Math.round(-v) : Math.round(v));

/** Q8_0 blocks of `x` (length a multiple of 32), in order. */
export function quantizeQ8_0(x: Float32Array): Uint8Array {
  const nb = checkBlocks(x, 'Q8_0');
  const out = new Uint8Array(nb * Q8_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0;
    for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[base + j]!));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    view.setUint16(o, fp32ToFp16(d), true);
    for (let j = 0; j < QK; j++) view.setInt8(o + 2 + j, roundAway(Math.fround(x[base + j]! * id)));
  }
  return out;
}

/** Q4_0 blocks of `x` (length a multiple of 32), in order. */
export function quantizeQ4_0(x: Float32Array): Uint8Array {
  const nb = checkBlocks(x, 'Q4_0');
  const out = new Uint8Array(nb * Q4_0_BLOCK_BYTES);
  const view = new DataView(out.buffer);
  for (let b = 0; b < nb; b++) {
    const base = b * QK;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[base + j]!;
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const o = b * Q4_0_BLOCK_BYTES;
    view.setUint16(o, fp32ToFp16(d), true);
    for (let j = 0; j < QK / 2; j++) {
      // (int8_t)(v + 8.5f) truncates toward zero; v/d lies in [-8, 8], so the sum is >= 0.
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[base + j]! * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(x[base + QK / 2 + j]! * id) + 8.5)));
      out[o + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}

/** The values Q8_0 blocks stand for (d * q), as llama.cpp dequantizes them. */
export function dequantizeQ8_0(bytes: Uint8Array): Float32Array {
  if (bytes.length % Q8_0_BLOCK_BYTES !== 0) throw new WhittleError('INVALID_ARGUMENT', `Q8_0: ${bytes.length} bytes are not whole blocks`);
  const nb = bytes.length / Q8_0_BLOCK_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(nb * QK);
  for (let b = 0; b < nb; b++) {
    const o = b * Q8_0_BLOCK_BYTES;
    const d = fp16ToFp32(view.getUint16(o, true));
    for (let j = 0; j < QK; j++) out[b * QK + j] = d * view.getInt8(o + 2 + j);
  }
  return out;
}

/** The values Q4_0 blocks stand for (d * (q - 8)), as llama.cpp dequantizes them. */
export function dequantizeQ4_0(bytes: Uint8Array): Float32Array {
  if (bytes.length % Q4_0_BLOCK_BYTES !== 0) throw new WhittleError('INVALID_ARGUMENT', `Q4_0: ${bytes.length} bytes are not whole blocks`);
  const nb = bytes.length / Q4_0_BLOCK_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(nb * QK);
  for (let b = 0; b < nb; b++) {
    const o = b * Q4_0_BLOCK_BYTES;
    const d = fp16ToFp32(view.getUint16(o, true));
    for (let j = 0; j < QK / 2; j++) {
      const byte = bytes[o + 2 + j]!;
      out[b * QK + j] = d * ((byte & 0x0f) - 8);
      out[b * QK + QK / 2 + j] = d * ((byte >> 4) - 8);
    }
  }
  return out;
}
