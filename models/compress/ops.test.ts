/**
 * onnxruntime-web (WASM) reads our packing as we meant it: one node per form, run on random
 * inputs, against X @ dequantize(W) computed here with float64 sums. A wrong byte order, nibble
 * order or zero-point layout would put whole blocks off by multiples of the scale.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { loadOrt, createSession } from '../../workers/ort/runtime.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { dequantizeBlockwise, quantizeBlockwise, type BlockSize, type NBits } from './blockwise.ts';
import { emitLinear, type AccuracyLevel, type LinearWeight } from './linear.ts';
import { dequantizePerChannelInt8, quantizePerChannelInt8 } from './per-channel.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

async function runLinear(w: LinearWeight, K: number, N: number, x: Float32Array, S: number): Promise<Float32Array> {
  const g = new GraphBuilder('linear');
  const input = g.input('x', 'float32', [1, 'S', K]);
  g.output(emitLinear(g, input, 'w', w, K, N, 'y'), 'float32', [1, 'S', N]);
  const session = await createSession(ort, g.build(), 'wasm');
  try {
    const out = await session.run({ x: new ort.Tensor('float32', x, [1, S, K]) });
    return out.y!.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** x [S, K] @ w [K, N] in float64. */
function matmul(x: Float32Array, w: Float32Array, S: number, K: number, N: number): Float64Array {
  const y = new Float64Array(S * N);
  for (let s = 0; s < S; s++) for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) y[s * N + n]! += x[s * K + k]! * w[k * N + n]!;
  return y;
}

const random = (n: number, seed: number, scale: number) => {
  const rand = createRng(seed);
  return Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
};

describe('MatMulNBits reads blockwise.ts packing', () => {
  // K 160 / 432: the trained models' widths, not multiples of 64 or 128 (padded last block).
  it.each([
    [4, 32, 160, 40], [4, 64, 160, 40], [4, 128, 432, 24], [8, 32, 432, 24], [8, 64, 160, 40], [8, 128, 160, 40],
  ] as [NBits, BlockSize, number, number][])('%i bits, block %i, K %i, N %i (accuracy_level 1)', async (bits, blockSize, K, N) => {
    const S = 3;
    const q = quantizeBlockwise(random(K * N, K + bits, 0.1), K, N, bits, blockSize);
    const x = random(S * K, 7, 1);
    const got = await runLinear({ kind: 'nbits', weight: q, accuracyLevel: 1 }, K, N, x, S);
    const want = matmul(x, dequantizeBlockwise(q), S, K, N);
    let scale = 0;
    for (const v of want) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < want.length; i++) expect(Math.abs(got[i]! - want[i]!) / scale).toBeLessThan(1e-5);
  });

  it('accuracy_level 4 (int8 activations) stays within the activation rounding bound', async () => {
    const [K, N, S] = [160, 40, 2];
    const q = quantizeBlockwise(random(K * N, 3, 0.1), K, N, 4, 32);
    const wd = dequantizeBlockwise(q);
    const x = random(S * K, 8, 1);
    const got = await runLinear({ kind: 'nbits', weight: q, accuracyLevel: 4 as AccuracyLevel }, K, N, x, S);
    const want = matmul(x, wd, S, K, N);
    // Symmetric int8 per block of A: each |x| error <= max|x_block| / 254 <= 1 / 254 here.
    for (let s = 0; s < S; s++) {
      for (let n = 0; n < N; n++) {
        let bound = 0;
        for (let k = 0; k < K; k++) bound += Math.abs(wd[k * N + n]!) / 254;
        expect(Math.abs(got[s * N + n]! - want[s * N + n]!)).toBeLessThanOrEqual(bound * 1.01 + 1e-5);
      }
    }
  });
});

describe('DynamicQuantizeMatMul reads per-channel.ts packing', () => {
  it('matches X @ dequantize(B) within uint8 activation rounding', async () => {
    const [K, N, S] = [432, 24, 4];
    const q = quantizePerChannelInt8(random(K * N, 9, 0.1), K, N);
    const wd = dequantizePerChannelInt8(q);
    const x = random(S * K, 10, 1);
    const got = await runLinear({ kind: 'int8', weight: q }, K, N, x, S);
    const want = matmul(x, wd, S, K, N);
    // A is quantized per tensor to uint8 over [min(x, 0), max(x, 0)]: step (max - min) / 255, error <= step / 2.
    let lo = 0;
    let hi = 0;
    for (const v of x) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const halfStep = (hi - lo) / 255 / 2;
    let worst = 0;
    for (let s = 0; s < S; s++) {
      for (let n = 0; n < N; n++) {
        let bound = 0;
        for (let k = 0; k < K; k++) bound += Math.abs(wd[k * N + n]!) * halfStep;
        const err = Math.abs(got[s * N + n]! - want[s * N + n]!);
        worst = Math.max(worst, err / bound);
        expect(err).toBeLessThanOrEqual(bound * 1.01 + 1e-5);
      }
    }
    expect(worst).toBeGreaterThan(0); // the activation rounding is really there (it is not fp32 inside)
  });
});
