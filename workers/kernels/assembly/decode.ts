// The decode step's numeric kernels, in AssemblyScript (compiled to WebAssembly SIMD by
// scripts/build-kernels.ts; the bytes ship in ../decode-kernels.wasm.ts). One position at a
// time: matrix-vector products over int8 weights, attention over a float KV cache, and the
// element-wise ops between them. Every pointer is a byte offset into the imported memory; the
// caller (../kernel-heap.ts, ../../text/kernel-decoder.ts) owns every allocation.
//
// Why a kernel of our own: onnxruntime-web's WASM DynamicQuantizeMatMul runs a one-row product
// at 4.0-6.7 GMAC/s at SmolLM2-135M's shapes (MLAS packs for GEMM), which made a decode step
// kernel-bound (bench/RESULTS.md). The int8 product below runs the same shapes at 14-20 GMAC/s
// from cache and is limited by memory bandwidth over a whole step.

// ---- int8 matrix-vector product ------------------------------------------------------------

// Activations are quantized symmetrically to [-ACT_MAX, ACT_MAX] (11 bits). With int8 weights a
// lane of i32x4.dot_i16x8_s accumulates K/4 products of at most 127 * 1023 each, which stays
// inside i32 for K <= 16384 (Llama-3.2-1B's widest input is 8192).
const ACT_MAX: f32 = 1023;

/**
 * Quantizes x [K] f32 into q [Kpad] i16 (zeros after K) and returns the scale s (x ~ q * s).
 * An all-zero row has scale 0 and quantizes to zeros.
 */
export function quantizeActivations(x: usize, q: usize, K: i32, Kpad: i32): f32 {
  let amax = f32x4.splat(0);
  let k = 0;
  for (; k + 4 <= K; k += 4) amax = f32x4.max(amax, f32x4.abs(v128.load(x + (<usize>k << 2))));
  let m = max(max(f32x4.extract_lane(amax, 0), f32x4.extract_lane(amax, 1)), max(f32x4.extract_lane(amax, 2), f32x4.extract_lane(amax, 3)));
  for (; k < K; k++) m = max(m, abs(load<f32>(x + (<usize>k << 2))));
  if (!(m > 0 && isFinite(m))) {
    // All zeros: scale 0. Inf or NaN in the row: a NaN scale, so the products are NaN as fp32
    // arithmetic would make them, never a finite value made up by the rounding.
    for (let i = 0; i < Kpad; i++) store<i16>(q + (<usize>i << 1), 0);
    return m == 0 ? 0 : NaN;
  }
  const inv = ACT_MAX / m;
  const vinv = f32x4.splat(inv);
  k = 0;
  for (; k + 8 <= K; k += 8) {
    const a = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + (<usize>k << 2)), vinv)));
    const b = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(x + (<usize>k << 2) + 16), vinv)));
    v128.store(q + (<usize>k << 1), i16x8.narrow_i32x4_s(a, b));
  }
  for (; k < K; k++) store<i16>(q + (<usize>k << 1), <i16>(<i32>nearest(load<f32>(x + (<usize>k << 2)) * inv)));
  for (; k < Kpad; k++) store<i16>(q + (<usize>k << 1), 0);
  return m / ACT_MAX;
}

// ---- reading ahead ---------------------------------------------------------------------------
//
// The products stream their weights from memory once a step, and with ~30 SIMD ops per 64-byte
// line the out-of-order core sees only a few lines ahead: one thread drew 6.7 GB/s (int8) and
// 7.1 GB/s (bf16) where the fp32 product, with half the ops per line, drew 9.8. WebAssembly has
// no prefetch instruction, so each iteration also loads the line AHEAD bytes further on (clamped
// to the matrix's last line) and folds it into a value kept in a global, which no compiler may
// drop: a step's int8 products 20.1 -> 18.2 ms, bf16 37.7 -> 34.8 ms (bench/decode-floor.ts).
// 1024 bytes measured best of 1024 / 2048 / 4096.

/** Where the read-ahead loads end up (never read: it only has to be observable). */
let readAheadSink: i32 = 0;
/** How far ahead of the line being multiplied the read-ahead load goes. */
const AHEAD: usize = 1024;

/**
 * y[n] = (Σ_k W[n, k] * q[k]) * scales[n] * qScale (+ bias[n] when bias != 0), n < Npad.
 * W is int8 in blocks of 4 output rows by 16 inputs, [Npad/4][Kpad/16][4][16] (packInt8Columns in
 * ../kernel-pack.ts): each iteration reads one 64-byte line, so a whole matrix streams through
 * memory in order. Kpad % 16 == 0, Npad % 4 == 0; q is [Kpad] i16 (quantizeActivations).
 */
export function gemvInt8(w: usize, scales: usize, q: usize, qScale: f32, bias: usize, y: usize, Npad: i32, Kpad: i32): void {
  let p = w;
  const last = w + <usize>Npad * <usize>Kpad - 16;
  let ahead = i32x4.splat(0);
  const vq = f32x4.splat(qScale);
  for (let n = 0; n < Npad; n += 4) {
    let a0 = i32x4.splat(0);
    let a1 = i32x4.splat(0);
    let a2 = i32x4.splat(0);
    let a3 = i32x4.splat(0);
    for (let k = 0; k < Kpad; k += 16) {
      const xl = v128.load(q + (<usize>k << 1));
      const xh = v128.load(q + (<usize>k << 1) + 16);
      let v = v128.load(p);
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl));
      a0 = i32x4.add(a0, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh));
      v = v128.load(p + 16);
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl));
      a1 = i32x4.add(a1, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh));
      v = v128.load(p + 32);
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl));
      a2 = i32x4.add(a2, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh));
      v = v128.load(p + 48);
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(v), xl));
      a3 = i32x4.add(a3, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(v), xh));
      ahead = v128.xor(ahead, v128.load(min(p + AHEAD, last)));
      p += 64;
    }
    readAheadSink ^= i32x4.extract_lane(ahead, 0);
    // The four rows' lane sums at once: [Σa0, Σa1, Σa2, Σa3].
    const s01 = i32x4.add(v128.shuffle<i32>(a0, a1, 0, 4, 1, 5), v128.shuffle<i32>(a0, a1, 2, 6, 3, 7));
    const s23 = i32x4.add(v128.shuffle<i32>(a2, a3, 0, 4, 1, 5), v128.shuffle<i32>(a2, a3, 2, 6, 3, 7));
    const sums = i32x4.add(v128.shuffle<i32>(s01, s23, 0, 1, 4, 5), v128.shuffle<i32>(s01, s23, 2, 3, 6, 7));
    const off = <usize>n << 2;
    let out = f32x4.mul(f32x4.mul(f32x4.convert_i32x4_s(sums), v128.load(scales + off)), vq);
    if (bias != 0) out = f32x4.add(out, v128.load(bias + off));
    v128.store(y + off, out);
  }
}

/**
 * y[n..n+4] = [Σa0, Σa1, Σa2, Σa3] (+ bias[n..n+4] when bias != 0): the four rows' float lane
 * sums of gemvF32 and gemvBf16, taken at once.
 */
@inline function storeRowSums(a0: v128, a1: v128, a2: v128, a3: v128, bias: usize, y: usize, n: i32): void {
  const s01 = f32x4.add(v128.shuffle<f32>(a0, a1, 0, 4, 1, 5), v128.shuffle<f32>(a0, a1, 2, 6, 3, 7));
  const s23 = f32x4.add(v128.shuffle<f32>(a2, a3, 0, 4, 1, 5), v128.shuffle<f32>(a2, a3, 2, 6, 3, 7));
  let out = f32x4.add(v128.shuffle<f32>(s01, s23, 0, 1, 4, 5), v128.shuffle<f32>(s01, s23, 2, 3, 6, 7));
  const off = <usize>n << 2;
  if (bias != 0) out = f32x4.add(out, v128.load(bias + off));
  v128.store(y + off, out);
}

/**
 * y[n] = Σ_k W[n, k] * x[k] (+ bias[n]), n < Npad: fp32 weights in blocks of 4 output rows by
 * 4 inputs, [Npad/4][Kpad/4][4][4] (packF32Columns). Kpad % 4 == 0, x is [Kpad] (zeros after K).
 */
export function gemvF32(w: usize, x: usize, bias: usize, y: usize, Npad: i32, Kpad: i32): void {
  let p = w;
  for (let n = 0; n < Npad; n += 4) {
    let a0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    for (let k = 0; k < Kpad; k += 4) {
      const xv = v128.load(x + (<usize>k << 2));
      a0 = f32x4.add(a0, f32x4.mul(v128.load(p), xv));
      a1 = f32x4.add(a1, f32x4.mul(v128.load(p + 16), xv));
      a2 = f32x4.add(a2, f32x4.mul(v128.load(p + 32), xv));
      a3 = f32x4.add(a3, f32x4.mul(v128.load(p + 48), xv));
      p += 64;
    }
    storeRowSums(a0, a1, a2, a3, bias, y, n);
  }
}

/**
 * y[n] = Σ_k W[n, k] * x[k] (+ bias[n]), n < Npad, over bf16 weights (the top 16 bits of an
 * fp32): what gemvF32 computes when every weight is a bf16 value, reading half the bytes. A
 * decode step is bound by memory bandwidth, and the models people run are published in bf16, so
 * this is the fp32 plan's product on them, exact (bf16 widens to fp32 without rounding).
 * Blocks of 4 output rows by 8 inputs, [Npad/4][Kpad/8][4][8] u16 (packBf16Columns): within a
 * row's 8, inputs 0..3 sit in the even u16 slots and 4..7 in the odd ones, so a left shift by 16
 * widens inputs 0..3 and a right shift then a left one widens 4..7, each lined up with 4
 * consecutive activations. (Masking 4..7 with a constant instead measured the same in Node but
 * 49.2 against 37.8 ms for a SmolLM2-135M step's products in Chromium 150's worker.)
 * Kpad % 8 == 0, x is [Kpad] (zeros after K).
 */
export function gemvBf16(w: usize, x: usize, bias: usize, y: usize, Npad: i32, Kpad: i32): void {
  let p = w;
  const last = w + (<usize>Npad * <usize>Kpad << 1) - 16;
  let ahead = i32x4.splat(0);
  for (let n = 0; n < Npad; n += 4) {
    // Two accumulators a row (inputs 0..3 and 4..7 of each block): shorter add chains.
    let a0 = f32x4.splat(0);
    let b0 = f32x4.splat(0);
    let a1 = f32x4.splat(0);
    let b1 = f32x4.splat(0);
    let a2 = f32x4.splat(0);
    let b2 = f32x4.splat(0);
    let a3 = f32x4.splat(0);
    let b3 = f32x4.splat(0);
    for (let k = 0; k < Kpad; k += 8) {
      const xl = v128.load(x + (<usize>k << 2));
      const xh = v128.load(x + (<usize>k << 2) + 16);
      let v = v128.load(p);
      a0 = f32x4.add(a0, f32x4.mul(i32x4.shl(v, 16), xl));
      b0 = f32x4.add(b0, f32x4.mul(i32x4.shl(i32x4.shr_u(v, 16), 16), xh));
      v = v128.load(p + 16);
      a1 = f32x4.add(a1, f32x4.mul(i32x4.shl(v, 16), xl));
      b1 = f32x4.add(b1, f32x4.mul(i32x4.shl(i32x4.shr_u(v, 16), 16), xh));
      v = v128.load(p + 32);
      a2 = f32x4.add(a2, f32x4.mul(i32x4.shl(v, 16), xl));
      b2 = f32x4.add(b2, f32x4.mul(i32x4.shl(i32x4.shr_u(v, 16), 16), xh));
      v = v128.load(p + 48);
      a3 = f32x4.add(a3, f32x4.mul(i32x4.shl(v, 16), xl));
      b3 = f32x4.add(b3, f32x4.mul(i32x4.shl(i32x4.shr_u(v, 16), 16), xh));
      ahead = v128.xor(ahead, v128.load(min(p + AHEAD, last)));
      p += 64;
    }
    readAheadSink ^= i32x4.extract_lane(ahead, 0);
    a0 = f32x4.add(a0, b0);
    a1 = f32x4.add(a1, b1);
    a2 = f32x4.add(a2, b2);
    a3 = f32x4.add(a3, b3);
    storeRowSums(a0, a1, a2, a3, bias, y, n);
  }
}

// ---- element-wise --------------------------------------------------------------------------

/** y [n] = x / sqrt(mean(x^2) + eps) * gamma (onnxruntime's SimplifiedLayerNormalization, f32 sums). */
export function rmsNorm(x: usize, gamma: usize, y: usize, n: i32, eps: f32): void {
  let acc = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    acc = f32x4.add(acc, f32x4.mul(v, v));
  }
  let ss = f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    ss += v * v;
  }
  const inv = <f32>1 / Mathf.sqrt(ss / <f32>n + eps);
  for (i = 0; i < n; i++) store<f32>(y + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * inv * load<f32>(gamma + (<usize>i << 2)));
}

/** a [n] += b [n]. */
export function addInPlace(a: usize, b: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(a + (<usize>i << 2), f32x4.add(v128.load(a + (<usize>i << 2)), v128.load(b + (<usize>i << 2))));
  for (; i < n; i++) store<f32>(a + (<usize>i << 2), load<f32>(a + (<usize>i << 2)) + load<f32>(b + (<usize>i << 2)));
}

/**
 * Rotary embedding, interleaved pairs (onnxruntime's RotaryEmbedding with interleaved = 1): for
 * each of `heads` heads of hs values, (x[2i], x[2i+1]) turns by the angle whose cos / sin are
 * cos[i] / sin[i] (the position's rows of the tables, hs/2 each).
 */
export function rope(x: usize, cos: usize, sin: usize, heads: i32, hs: i32): void {
  const half = hs >> 1;
  for (let h = 0; h < heads; h++) {
    const base = x + (<usize>(h * hs) << 2);
    for (let i = 0; i < half; i++) {
      const p = base + (<usize>i << 3);
      const x0 = load<f32>(p);
      const x1 = load<f32>(p + 4);
      const c = load<f32>(cos + (<usize>i << 2));
      const s = load<f32>(sin + (<usize>i << 2));
      store<f32>(p, x0 * c - x1 * s);
      store<f32>(p + 4, x0 * s + x1 * c);
    }
  }
}

/**
 * e^x for four lanes (Cephes' expf: x = n ln2 + r, a degree-6 polynomial on r, 2^n through the
 * exponent bits): what the Cephes expf gives (~1e-7 relative; kernels.test.ts checks SiLU and
 * softmax within 1e-6 of float64), four values at a time instead of a call to Mathf.exp each
 * (a SmolLM2-135M step: 22.2 -> 21.2 ms). x is clamped to [-87.3, 88.376] (where e^x stays a finite normal float: Cephes'
 * bound; above it 2^n would be 2^128); NaN stays NaN.
 */
@inline function exp4(x: v128): v128 {
  const nan = f32x4.ne(x, x);
  x = f32x4.min(f32x4.max(x, f32x4.splat(-87.3)), f32x4.splat(88.3762626647949));
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(1.44269504088896341)));
  const r = f32x4.sub(f32x4.sub(x, f32x4.mul(n, f32x4.splat(0.693359375))), f32x4.mul(n, f32x4.splat(-2.12194440e-4)));
  let p = f32x4.splat(1.9875691500e-4);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.mul(f32x4.mul(p, r), r), f32x4.add(r, f32x4.splat(1)));
  const pow2n = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(n), i32x4.splat(127)), 23);
  return v128.bitselect(f32x4.splat(NaN), f32x4.mul(p, pow2n), nan);
}

/** y [F] = silu(gu[0..F]) * gu[F..2F] (gate | up columns). */
export function siluMul(gu: usize, y: usize, F: i32): void {
  const one = f32x4.splat(1);
  let i = 0;
  for (; i + 4 <= F; i += 4) {
    const g = v128.load(gu + (<usize>i << 2));
    const u = v128.load(gu + (<usize>(i + F) << 2));
    v128.store(y + (<usize>i << 2), f32x4.mul(f32x4.div(g, f32x4.add(one, exp4(f32x4.neg(g)))), u));
  }
  for (; i < F; i++) {
    const g = load<f32>(gu + (<usize>i << 2));
    const u = load<f32>(gu + (<usize>(i + F) << 2));
    store<f32>(y + (<usize>i << 2), (g / (<f32>1 + Mathf.exp(-g))) * u);
  }
}

// ---- attention -----------------------------------------------------------------------------

/** Σ_d a[d] * b[d] over hs values (hs % 4 == 0). */
@inline function dot(a: usize, b: usize, hs: i32): f32 {
  let acc = f32x4.splat(0);
  for (let d = 0; d < hs; d += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>d << 2)), v128.load(b + (<usize>d << 2))));
  return f32x4.extract_lane(acc, 0) + f32x4.extract_lane(acc, 1) + f32x4.extract_lane(acc, 2) + f32x4.extract_lane(acc, 3);
}

/**
 * Causal attention of one new position over T cached ones (the new one included), grouped-query:
 * query head h reads KV head h / (H / KV). q [H*hs] (scaled beforehand: the graphs' scale is 1),
 * keys and values [KV][cap][hs] (the first T positions filled), out [H*hs], scores [G*T] scratch
 * (G = H / KV). The G query heads of a KV head are taken together, so each cached key and value
 * row is read once per KV head, not once per query head. hs % 4 == 0.
 */
export function attend(q: usize, keys: usize, values: usize, out: usize, scores: usize, H: i32, KV: i32, hs: i32, T: i32, cap: i32): void {
  const G = H / KV;
  const rowBytes = <usize>hs << 2;
  const scoreRow = <usize>T << 2;
  for (let kv = 0; kv < KV; kv++) {
    const kBase = keys + <usize>kv * <usize>cap * rowBytes;
    const vBase = values + <usize>kv * <usize>cap * rowBytes;
    const q0 = q + <usize>(kv * G) * rowBytes;
    const o0 = out + <usize>(kv * G) * rowBytes;
    // Scores of the group's G heads against every position: [G][T].
    for (let t = 0; t < T; t++) {
      const kt = kBase + <usize>t * rowBytes;
      for (let g = 0; g < G; g++) store<f32>(scores + <usize>g * scoreRow + (<usize>t << 2), dot(q0 + <usize>g * rowBytes, kt, hs));
    }
    // Softmax per head, in place; the probabilities' 1 / sum is folded into the weights below.
    for (let g = 0; g < G; g++) {
      const sg = scores + <usize>g * scoreRow;
      let m: f32 = -Infinity;
      for (let t = 0; t < T; t++) m = max(m, load<f32>(sg + (<usize>t << 2)));
      const vm = f32x4.splat(m);
      let vsum = f32x4.splat(0);
      let t = 0;
      for (; t + 4 <= T; t += 4) {
        const e = exp4(f32x4.sub(v128.load(sg + (<usize>t << 2)), vm));
        v128.store(sg + (<usize>t << 2), e);
        vsum = f32x4.add(vsum, e);
      }
      let sum = f32x4.extract_lane(vsum, 0) + f32x4.extract_lane(vsum, 1) + f32x4.extract_lane(vsum, 2) + f32x4.extract_lane(vsum, 3);
      for (; t < T; t++) {
        const e = Mathf.exp(load<f32>(sg + (<usize>t << 2)) - m);
        store<f32>(sg + (<usize>t << 2), e);
        sum += e;
      }
      const inv = <f32>1 / sum;
      const vinv = f32x4.splat(inv);
      t = 0;
      for (; t + 4 <= T; t += 4) v128.store(sg + (<usize>t << 2), f32x4.mul(v128.load(sg + (<usize>t << 2)), vinv));
      for (; t < T; t++) store<f32>(sg + (<usize>t << 2), load<f32>(sg + (<usize>t << 2)) * inv);
      const og = o0 + <usize>g * rowBytes;
      for (let d = 0; d < hs; d += 4) v128.store(og + (<usize>d << 2), f32x4.splat(0));
    }
    // out_g = Σ_t p_{g,t} V_t, each value row read once for the G heads.
    for (let t = 0; t < T; t++) {
      const vt = vBase + <usize>t * rowBytes;
      for (let g = 0; g < G; g++) {
        const p = f32x4.splat(load<f32>(scores + <usize>g * scoreRow + (<usize>t << 2)));
        const og = o0 + <usize>g * rowBytes;
        for (let d = 0; d < hs; d += 4) {
          const o = og + (<usize>d << 2);
          v128.store(o, f32x4.add(v128.load(o), f32x4.mul(p, v128.load(vt + (<usize>d << 2)))));
        }
      }
    }
  }
}
