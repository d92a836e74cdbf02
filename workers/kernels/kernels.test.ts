/**
 * The decode kernels (assembly/decode.ts, run from the committed bytes) against plain float64
 * references written here, and the heap that feeds them. Shapes are chosen off the kernels'
 * block sizes (K not a multiple of 16, N not of 4) so the padding is exercised too.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { KernelHeap } from './kernel-heap.ts';
import { bf16Padding, f32Padding, int8Padding, isBf16Exact, packBf16Columns, packF32Columns, packInt8Columns } from './kernel-pack.ts';
import { buildGenerated, GENERATED } from '../../scripts/build-kernels.ts';

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

const rand = prng(7);
const floats = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);

function expectNear(got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number): void {
  expect(got.length).toBe(want.length);
  let scale = 1e-30;
  for (let i = 0; i < want.length; i++) scale = Math.max(scale, Math.abs(want[i]!));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst / scale).toBeLessThan(tolerance);
}

describe('kernel build', () => {
  it('the committed bytes are what the AssemblyScript source compiles to', async () => {
    const committed = readFileSync(fileURLToPath(new URL(`../../${GENERATED}`, import.meta.url)), 'utf8');
    expect(await buildGenerated()).toBe(committed);
  });
});

describe('KernelHeap', () => {
  it('allocates aligned zeroed blocks, reuses and coalesces freed ones, and keeps data when it grows', () => {
    const heap = KernelHeap.create();
    const a = heap.alloc(10);
    const b = heap.alloc(100);
    const c = heap.alloc(20);
    for (const p of [a, b, c]) expect(p % 16).toBe(0);
    heap.f32(c, 5).set([1, 2, 3, 4, 5]);
    heap.f32(b, 4).fill(9);
    heap.free(b);
    // A smaller block fits in b's place, zeroed.
    const d = heap.alloc(48);
    expect(d).toBe(b);
    expect([...heap.f32(d, 4)]).toEqual([0, 0, 0, 0]);
    heap.free(a);
    heap.free(d);
    // a and d's blocks coalesce (with the rest of b's): one block of 16 + 112 bytes before c.
    expect(heap.alloc(128)).toBe(a);
    // Growing the memory (64 MiB) keeps what was written.
    const big = heap.alloc(64 * 2 ** 20);
    expect(heap.reservedBytes).toBeGreaterThanOrEqual(big + 64 * 2 ** 20);
    expect([...heap.f32(c, 5)]).toEqual([1, 2, 3, 4, 5]);
    heap.f32(big, 1024).fill(7);
    heap.free(big);
    expect(() => heap.free(big)).toThrow(expect.objectContaining({ code: 'INTERNAL' }));
    // big's bytes went back to the top of the heap: a block allocated there again is zeroed.
    const again = heap.alloc(4096);
    expect(again).toBe(big);
    expect(heap.f32(again, 1024).every((v) => v === 0)).toBe(true);
  });
});

describe('decode kernels', () => {
  const heap = KernelHeap.create();
  const k = heap.kernels;

  it('quantizeActivations: 11-bit symmetric rounding, zero padding, a zero row, a NaN', () => {
    const K = 37;
    const Kpad = 48;
    const x = floats(K, 3);
    const xp = heap.allocF32(x);
    const q = heap.alloc(Kpad * 2);
    heap.i16(q, Kpad).fill(-5);
    const scale = k.quantizeActivations(xp, q, K, Kpad);
    const amax = Math.max(...x.map(Math.abs));
    expect(scale).toBeCloseTo(amax / 1023, 6);
    const qs = heap.i16(q, Kpad);
    for (let i = 0; i < K; i++) expect(Math.abs(qs[i]! - x[i]! / scale)).toBeLessThanOrEqual(0.5 + 1e-3);
    expect(Math.max(...qs.map(Math.abs))).toBe(1023);
    expect([...qs.subarray(K)]).toEqual(new Array(Kpad - K).fill(0));
    heap.f32(xp, K).fill(0);
    expect(k.quantizeActivations(xp, q, K, Kpad)).toBe(0);
    expect([...heap.i16(q, Kpad)].every((v) => v === 0)).toBe(true);
    heap.f32(xp, K)[3] = NaN;
    expect(k.quantizeActivations(xp, q, K, Kpad)).toBeNaN();
  });

  it('gemvInt8 over packed int8 weights = the float64 product with scales and bias (K 40, N 10: both padded)', () => {
    const K = 40;
    const N = 10;
    const { Kpad, Npad } = int8Padding(K, N);
    const b = Int8Array.from({ length: K * N }, () => Math.round(rand() * 254) - 127);
    const scales = floats(N, 0.1).map(Math.abs);
    const bias = floats(N);
    const q = Int16Array.from({ length: Kpad }, (_, i) => (i < K ? Math.round(rand() * 2046) - 1023 : 0));
    const qScale = 0.003;
    const w = heap.alloc(Kpad * Npad);
    packInt8Columns(b, K, N, heap.i8(w, Kpad * Npad));
    const sp = heap.alloc(Npad * 4);
    heap.f32(sp, N).set(scales);
    const bp = heap.alloc(Npad * 4);
    heap.f32(bp, N).set(bias);
    const qp = heap.alloc(Kpad * 2);
    heap.i16(qp, Kpad).set(q);
    const y = heap.alloc(Npad * 4);
    k.gemvInt8(w, sp, qp, qScale, bp, y, Npad, Kpad);
    const want = Array.from({ length: N }, (_, n) => {
      let acc = 0;
      for (let i = 0; i < K; i++) acc += b[i * N + n]! * q[i]!;
      return acc * scales[n]! * qScale + bias[n]!;
    });
    expectNear(heap.f32(y, N), want, 1e-6);
    // Without a bias (pointer 0).
    k.gemvInt8(w, sp, qp, qScale, 0, y, Npad, Kpad);
    expectNear(
      heap.f32(y, N),
      want.map((v, n) => v - bias[n]!),
      1e-6,
    );
  });

  it('gemvF32 over packed fp32 weights (K 13, N 7: both padded)', () => {
    const K = 13;
    const N = 7;
    const { Kpad, Npad } = f32Padding(K, N);
    const wKN = floats(K * N);
    const x = floats(K);
    const xp = heap.alloc(Kpad * 4);
    heap.f32(xp, K).set(x);
    const want = Array.from({ length: N }, (_, n) => x.reduce((acc, v, i) => acc + v * wKN[i * N + n]!, 0));
    const w = heap.alloc(Kpad * Npad * 4);
    packF32Columns(wKN, K, N, heap.f32(w, Kpad * Npad));
    const y = heap.alloc(Npad * 4);
    k.gemvF32(w, xp, 0, y, Npad, Kpad);
    expectNear(heap.f32(y, N), want, 1e-6);
  });

  it('gemvBf16 over packed bf16 weights equals the fp32 product (K 21, N 7: both padded)', () => {
    const K = 21;
    const N = 7;
    const { Kpad, Npad } = bf16Padding(K, N);
    // bf16 values: fp32 with the low 16 bits cleared, as a bf16 checkpoint widens to.
    const wKN = floats(K * N);
    new Uint32Array(wKN.buffer).forEach((b, i, a) => (a[i] = b & 0xffff0000));
    expect(isBf16Exact(wKN)).toBe(true);
    expect(isBf16Exact(floats(64))).toBe(false);
    const x = floats(K);
    const bias = floats(N);
    const xp = heap.alloc(Kpad * 4);
    heap.f32(xp, K).set(x);
    const bp = heap.alloc(Npad * 4);
    heap.f32(bp, N).set(bias);
    const want = Array.from({ length: N }, (_, n) => x.reduce((acc, v, i) => acc + v * wKN[i * N + n]!, 0) + bias[n]!);
    const w = heap.alloc(Kpad * Npad * 2);
    packBf16Columns(wKN, K, N, heap.u16(w, Kpad * Npad));
    const y = heap.alloc(Npad * 4);
    k.gemvBf16(w, xp, bp, y, Npad, Kpad);
    expectNear(heap.f32(y, N), want, 1e-6);
    k.gemvBf16(w, xp, 0, y, Npad, Kpad);
    expectNear(
      heap.f32(y, N),
      want.map((v, n) => v - bias[n]!),
      1e-6,
    );
  });

  it('rmsNorm, addInPlace, siluMul and interleaved rope', () => {
    const n = 22;
    const x = floats(n, 2);
    const gamma = floats(n);
    const xp = heap.allocF32(x);
    const gp = heap.allocF32(gamma);
    const y = heap.alloc(n * 4);
    k.rmsNorm(xp, gp, y, n, 1e-5);
    const inv = 1 / Math.sqrt(x.reduce((a, v) => a + v * v, 0) / n + 1e-5);
    expectNear(
      heap.f32(y, n),
      Array.from(x, (v, i) => v * inv * gamma[i]!),
      1e-6,
    );

    k.addInPlace(xp, gp, n);
    expectNear(
      heap.f32(xp, n),
      Array.from(x, (v, i) => v + gamma[i]!),
      1e-7,
    );

    const F = 9;
    const gu = floats(2 * F, 4);
    const gup = heap.allocF32(gu);
    const act = heap.alloc(F * 4);
    k.siluMul(gup, act, F);
    expectNear(
      heap.f32(act, F),
      Array.from({ length: F }, (_, i) => (gu[i]! / (1 + Math.exp(-gu[i]!))) * gu[F + i]!),
      1e-6,
    );
    // The vector exp's clamped range: gates far out on both sides, and a NaN that must stay one.
    const far = Float32Array.of(-200, -90, 90, 200, 0.5, -0.5, 30, NaN, 1, 1, 1, 1, 1, 1, 1, 1);
    const farOut = heap.alloc(8 * 4);
    k.siluMul(heap.allocF32(far), farOut, 8);
    const got = heap.f32(farOut, 8);
    expectNear(got.subarray(0, 7), [0, 0, 90, 200, 0.5 / (1 + Math.exp(-0.5)), -0.5 / (1 + Math.exp(0.5)), 30], 1e-6);
    expect(got[7]).toBeNaN();

    const heads = 3;
    const hs = 8;
    const v = floats(heads * hs);
    const cos = floats(hs / 2);
    const sin = floats(hs / 2);
    const vp = heap.allocF32(v);
    k.rope(vp, heap.allocF32(cos), heap.allocF32(sin), heads, hs);
    const want = new Float32Array(v);
    for (let h = 0; h < heads; h++) {
      for (let i = 0; i < hs / 2; i++) {
        const a = v[h * hs + 2 * i]!;
        const b = v[h * hs + 2 * i + 1]!;
        want[h * hs + 2 * i] = a * cos[i]! - b * sin[i]!;
        want[h * hs + 2 * i + 1] = a * sin[i]! + b * cos[i]!;
      }
    }
    expectNear(heap.f32(vp, heads * hs), want, 1e-6);
  });

  it('attend: grouped-query softmax attention over the first T of cap cached positions', () => {
    const H = 4;
    const KV = 2;
    const hs = 8;
    const T = 5;
    const cap = 8;
    const q = floats(H * hs, 2);
    // Positions past T hold garbage the kernel must not read.
    const keys = floats(KV * cap * hs, 2);
    const values = floats(KV * cap * hs, 2);
    const out = heap.alloc(H * hs * 4);
    k.attend(heap.allocF32(q), heap.allocF32(keys), heap.allocF32(values), out, heap.alloc((H / KV) * T * 4), H, KV, hs, T, cap);
    const want = new Float64Array(H * hs);
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / (H / KV));
      const scores = Array.from({ length: T }, (_, t) => {
        let s = 0;
        for (let d = 0; d < hs; d++) s += q[h * hs + d]! * keys[(kv * cap + t) * hs + d]!;
        return s;
      });
      const m = Math.max(...scores);
      const e = scores.map((s) => Math.exp(s - m));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let t = 0; t < T; t++) for (let d = 0; d < hs; d++) want[h * hs + d]! += (e[t]! / sum) * values[(kv * cap + t) * hs + d]!;
    }
    expectNear(heap.f32(out, H * hs), want, 1e-5);
  });
});
