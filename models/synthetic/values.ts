/**
 * Deterministic synthetic weight values, streamed in chunks already encoded as the checkpoint's
 * dtype. Each tensor has its own generator seeded from (seed, tensor name), so a tensor's bytes
 * do not depend on shard layout, write order or chunk size, and nothing holds a whole model.
 *
 * Distribution: 'normal' is an Irwin-Hall sum of the four bytes of one 32-bit draw (mean 0, the
 * requested std, within +-3.45 std): close enough to the N(0, std) init transformers uses, and
 * ~10x cheaper than Box-Muller, which matters at 1.2e9 values. 'ones' is the RMSNorm init.
 *
 * @example
 * for (const bytes of tensorChunks(0, 'model.norm.weight', 576, { kind: 'ones' }, 'bf16')) write(bytes);
 */

export type SyntheticDtype = 'bf16' | 'f16' | 'f32';
export type Init = { kind: 'normal'; std: number } | { kind: 'ones' };

/** Bytes per element of each dtype. */
export const DTYPE_BYTES: Readonly<Record<SyntheticDtype, number>> = { bf16: 2, f16: 2, f32: 4 };
/** The safetensors dtype name. */
export const SAFETENSORS_DTYPE: Readonly<Record<SyntheticDtype, string>> = { bf16: 'BF16', f16: 'F16', f32: 'F32' };

/** FNV-1a over the UTF-8 bytes of `name`, mixed with the seed: one independent stream per tensor. */
function streamSeed(seed: number, name: string): number {
  let h = 0x811c9dc5;
  for (const b of new TextEncoder().encode(name)) h = Math.imul(h ^ b, 0x01000193);
  return (h ^ Math.imul(seed >>> 0, 0x9e3779b1)) >>> 0;
}

/** std of the sum of four independent uniform bytes: sqrt(4 * (256^2 - 1) / 12). */
const BYTE_SUM_STD = Math.sqrt((4 * (256 * 256 - 1)) / 12);

/** float32 bits -> bfloat16 bits, round to nearest even (what torch's `.to(torch.bfloat16)` does). */
function encodeBf16(f32: Uint32Array, out: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = f32[i]!;
    out[i] = (x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
  }
}

/** float32 bits -> IEEE half bits, round to nearest even; values here are far from half's range limits but handled anyway. */
function encodeF16(f32: Uint32Array, out: Uint16Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = f32[i]!;
    const sign = (x >>> 16) & 0x8000;
    const exp = ((x >>> 23) & 0xff) - 127 + 15;
    const mant = x & 0x7fffff;
    if (((x >>> 23) & 0xff) === 0xff) out[i] = sign | 0x7c00 | (mant ? 0x200 : 0);
    else if (exp >= 0x1f) out[i] = sign | 0x7c00;
    else if (exp <= 0) {
      if (exp < -10) {
        out[i] = sign;
        continue;
      }
      const m = mant | 0x800000;
      const shift = 14 - exp;
      const rest = m & ((1 << shift) - 1);
      const halfway = 1 << (shift - 1);
      let h = m >>> shift;
      if (rest > halfway || (rest === halfway && h & 1)) h++;
      out[i] = sign | h;
    } else {
      let h = (exp << 10) | (mant >>> 13);
      const rest = mant & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry into the exponent is the right rounding
      out[i] = sign | h;
    }
  }
}

/**
 * The `count` values of tensor `name` as `dtype` bytes, in chunks of at most `chunk` elements.
 * The yielded array is reused: consume (write) it before pulling the next one.
 */
export function* tensorChunks(seed: number, name: string, count: number, init: Init, dtype: SyntheticDtype, chunk = 1 << 20): Generator<Uint8Array> {
  const values = new Float32Array(Math.min(chunk, count)); // one chunk of float32 values
  const bits = new Uint32Array(values.buffer);
  const half = dtype === 'f32' ? null : new Uint16Array(values.length);
  let state = streamSeed(seed, name);
  const scale = init.kind === 'normal' ? init.std / BYTE_SUM_STD : 0;
  for (let done = 0; done < count; ) {
    const n = Math.min(values.length, count - done);
    if (init.kind === 'ones') values.fill(1, 0, n);
    else {
      for (let i = 0; i < n; i++) {
        // mulberry32 (as core/random.ts), inlined and returning the raw 32 bits
        state = (state + 0x6d2b79f5) >>> 0;
        let t = state;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        const u = (t ^ (t >>> 14)) >>> 0;
        values[i] = ((u & 0xff) + ((u >>> 8) & 0xff) + ((u >>> 16) & 0xff) + (u >>> 24) - 510) * scale;
      }
    }
    if (half === null) yield new Uint8Array(values.buffer, 0, n * 4);
    else {
      if (dtype === 'bf16') encodeBf16(bits, half, n);
      else encodeF16(bits, half, n);
      yield new Uint8Array(half.buffer, 0, n * 2);
    }
    done += n;
  }
}
