/**
 * AWQ-lite (awq.ts) and its statistics (workers/text/activation-stats.ts):
 * - folding: scales folded into norm / V / up weights leave the fp32 model's logits unchanged
 *   (compiled graphs, before any quantization), on a random GQA model with Q/K/V biases and on
 *   stories-layerskip with the scales AWQ chooses from its own statistics;
 * - the search: on a layer whose input has outlier channels, the chosen scaling's output error is
 *   below round-to-nearest's, both recomputed here from their definitions;
 * - the statistics: the probe graph's linear inputs equal the block's arithmetic recomputed on
 *   the host from the weights (RMSNorm, the MLP), so they are the values the graph multiplies.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { collectLinearInputStats } from '../../workers/text/activation-stats.ts';
import { compressPreparedAwq } from '../../workers/text/awq-compress.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { textModelFromHf } from '../../workers/text/model.ts';
import { readLocalModelFile } from '../local.ts';
import { HELD_OUT_PROMPTS } from '../llama/testing/held-out-prompts.ts';
import { prepareWeights, type PreparedWeights } from '../llama/prepare.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import { awqLayer, awqScales, foldAwqScales, searchAwqScale, tieToKvGroups, type BlockInputStats, type BlockScales } from './awq.ts';
import { dequantizeBlockwise, quantizeBlockwise } from './blockwise.ts';
import { FullModel, loadQualityModel, qualityText } from './quality-table.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

async function logitsOf(w: PreparedWeights, prompts: number[][]): Promise<Float32Array[]> {
  const model = await FullModel.compile(ort, w);
  const out = await Promise.all(prompts.map((p) => model.logits(p)));
  await model.release();
  return out;
}

describe('folding AWQ scales leaves the fp32 model unchanged', () => {
  it('random GQA model (8 query / 2 KV heads, Q/K/V biases, half RoPE): any tied positive scales', async () => {
    const { config: c, weights } = randomLlama({ dim: 64, hiddenDim: 96, nHeads: 8, nKvHeads: 2, vocabSize: 80, maxSeqLen: 32, qkvBias: true }, 7, 0.2);
    const fp32 = prepareWeights(c, weights);
    const hs = fp32.headSize;
    const rand = createRng(11);
    // Scales over [1/4, 4] (a wider spread than AWQ picks), wo's tied across each KV group.
    const draw = (n: number) => Float32Array.from({ length: n }, () => 4 ** (2 * rand() - 1));
    const scaled: PreparedWeights = {
      ...fp32,
      layers: fp32.layers.map((l) => {
        const s: BlockScales = { qkv: draw(c.dim), wo: tieToKvGroups(draw(c.nHeads * hs), c.nHeads, c.nKvHeads, hs), gateUp: draw(c.dim), down: draw(c.hiddenDim) };
        return foldAwqScales(l, c, hs, s);
      }),
    };
    expect(scaled.layers[1]!.qkv).not.toEqual(fp32.layers[1]!.qkv);
    const prompts = [[1, 5, 9, 33, 4, 70, 12], [1, 40, 41, 42]];
    const [ref, got] = [await logitsOf(fp32, prompts), await logitsOf(scaled, prompts)];
    const worst = Math.max(...ref.map((r, i) => maxAbsDiff(r, got[i]!)));
    console.log(`random model, folded scales: max |logit diff| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  }, 60_000);

  it('stories-layerskip with the scales AWQ picks from its own calibration statistics (q4 g32 search)', async () => {
    const m = loadQualityModel('stories-layerskip');
    const c = m.config;
    const fp32 = prepareWeights(c, m.weights);
    const { calibration, heldOut } = qualityText(m);
    const layers = [...fp32.layers];
    const alphas: number[] = [];
    const qdq = (w: Float32Array, K: number, N: number) => dequantizeBlockwise(quantizeBlockwise(w, K, N, 4, 32));
    await collectLinearInputStats({ ort, backend: 'wasm', weights: fp32, attention: 'onnx' }, calibration, (i, stats) => {
      const r = awqLayer(fp32.layers[i]!, c, fp32.headSize, stats, qdq);
      layers[i] = r.layer; // scaled and folded, still fp32
      alphas.push(r.choices.qkv.alpha, r.choices.wo.alpha, r.choices.gateUp.alpha, r.choices.down.alpha);
    });
    console.log(`stories-layerskip alphas (qkv, wo, gateUp, down per layer): ${alphas.join(' ')}`);
    expect(alphas.some((a) => a > 0)).toBe(true); // some scaling really was applied
    const prompts = heldOut.slice(0, 4);
    const [ref, got] = [await logitsOf(fp32, prompts), await logitsOf({ ...fp32, layers }, prompts)];
    const worst = Math.max(...ref.map((r, i) => maxAbsDiff(r, got[i]!)));
    console.log(`stories-layerskip, folded AWQ scales: max |logit diff| ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  }, 120_000);
});

describe('AWQ search on a layer with outlier input channels', () => {
  it('the chosen scaling has a smaller calibration output error than round-to-nearest (recomputed independently)', () => {
    const K = 128;
    const N = 96;
    const R = 256;
    const rand = createRng(5);
    const normal = () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
    const w = Float32Array.from({ length: K * N }, () => 0.02 * normal());
    // Four input channels carry 25x larger activations, as some LLM channels do.
    const outliers = new Set([3, 40, 77, 120]);
    const x = Float32Array.from({ length: R * K }, (_, i) => normal() * (outliers.has(i % K) ? 25 : 1));
    const meanAbs = new Float32Array(K);
    for (let i = 0; i < R * K; i++) meanAbs[i % K]! += Math.abs(x[i]!) / R;
    const qdq = (v: Float32Array, k: number, n: number) => dequantizeBlockwise(quantizeBlockwise(v, k, n, 4, 32));
    const { scales, choice } = searchAwqScale(w, K, N, { meanAbs, rows: x }, qdq);

    /** || X W - (X / s) Qdq(diag(s) W) ||^2, by the definition (float64, plain loops). */
    const outputError = (s: Float32Array): number => {
      const sw = new Float32Array(K * N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) sw[k * N + n] = w[k * N + n]! * s[k]!;
      const q = qdq(sw, K, N);
      let e = 0;
      for (let r = 0; r < R; r++) {
        for (let n = 0; n < N; n++) {
          let exact = 0;
          let approx = 0;
          for (let k = 0; k < K; k++) {
            exact += x[r * K + k]! * w[k * N + n]!;
            approx += (x[r * K + k]! / s[k]!) * q[k * N + n]!;
          }
          e += (exact - approx) ** 2;
        }
      }
      return e;
    };
    const rtn = outputError(new Float32Array(K).fill(1));
    const awq = outputError(scales);
    console.log(`outlier layer: alpha ${choice.alpha}, output error AWQ / RTN ${(awq / rtn).toFixed(3)}`);
    expect(choice.alpha).toBeGreaterThan(0);
    expect(awq / choice.error).toBeCloseTo(1, 3); // the search measured what it claims
    expect(rtn / choice.rtnError).toBeCloseTo(1, 3);
    expect(awq).toBeLessThan(0.7 * rtn);
    // The scales are m^alpha normalised to geometric middle 1.
    const expected = awqScales(meanAbs, choice.alpha);
    expect(scales).toEqual(expected);
    expect(Math.max(...scales) * Math.min(...scales)).toBeCloseTo(1, 5);
  });
});

describe('linear-input statistics from the compiled probe graphs', () => {
  it("stories-layerskip block 0: in.qkv, in.gate_up and in.down equal the block's arithmetic on the host", async () => {
    const m = loadQualityModel('stories-layerskip');
    const c = m.config;
    const fp32 = prepareWeights(c, m.weights);
    const tokens = qualityText(m).calibration.slice(0, 40);
    let block0: BlockInputStats | null = null;
    // rows >= positions: every position is a row, in order.
    await collectLinearInputStats({ ort, backend: 'wasm', weights: fp32, attention: 'onnx' }, tokens, (i, s) => {
      if (i === 0) block0 = s;
    }, { rows: 1000 });
    const s = block0! as BlockInputStats;
    const S = tokens.length;
    const D = c.dim;
    const F = c.hiddenDim;
    const l = fp32.layers[0]!;
    const rms = (v: Float64Array, gamma: Float32Array) => {
      let ss = 0;
      for (const e of v) ss += e * e;
      const inv = 1 / Math.sqrt(ss / v.length + c.normEps);
      return Float64Array.from(v, (e, k) => e * inv * gamma[k]!);
    };
    const matRow = (x: ArrayLike<number>, w: Float32Array, K: number, N: number) => {
      const y = new Float64Array(N);
      for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) y[n]! += x[k]! * w[k * N + n]!;
      return y;
    };
    let worst = 0;
    const check = (got: Float32Array, want: Float64Array) => {
      for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!) / (1 + Math.abs(want[i]!)));
    };
    const meanQkv = new Float64Array(D);
    for (let p = 0; p < S; p++) {
      const h = Float64Array.from(fp32.embedding.subarray(tokens[p]! * D, (tokens[p]! + 1) * D));
      const xq = rms(h, l.attnNorm);
      check(s.qkv.rows.subarray(p * D, (p + 1) * D), xq);
      xq.forEach((v, k) => (meanQkv[k]! += Math.abs(v) / S));
      // The residual after attention uses the graph's own attention output (in.wo): what follows is host arithmetic.
      const attn = matRow(s.wo.rows.subarray(p * c.nHeads * fp32.headSize, (p + 1) * c.nHeads * fp32.headSize), l.wo as Float32Array, c.nHeads * fp32.headSize, D);
      const xf = rms(Float64Array.from(h, (v, k) => v + attn[k]!), l.ffnNorm);
      check(s.gateUp.rows.subarray(p * D, (p + 1) * D), xf);
      const gu = matRow(s.gateUp.rows.subarray(p * D, (p + 1) * D), l.gateUp as Float32Array, D, 2 * F);
      check(s.down.rows.subarray(p * F, (p + 1) * F), Float64Array.from({ length: F }, (_, j) => (gu[j]! / (1 + Math.exp(-gu[j]!))) * gu[F + j]!));
    }
    check(s.qkv.meanAbs, meanQkv);
    console.log(`probe linear inputs vs host arithmetic: max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-4);
  }, 60_000);

  it("compressPreparedAwq reports an alpha per linear and never a larger calibration error than RTN's", async () => {
    const m = loadQualityModel('stories260K');
    const fp32 = prepareWeights(m.config, m.weights);
    const { choices, weights } = await compressPreparedAwq({ ort, backend: 'wasm', weights: fp32, attention: 'onnx' }, { linear: 'q4', group: 32, method: 'awq' }, 'wasm', qualityText(m).calibration);
    expect(choices).toHaveLength(m.config.nLayers);
    for (const layer of choices) for (const ch of Object.values(layer)) expect(ch.error).toBeLessThanOrEqual(ch.rtnError);
    expect(weights.layers[0]!.qkv).toBeInstanceOf(Float32Array); // WASM auto for a small model's q4: the grid dequantized
  }, 60_000);
});

describe("TextEngine.compress with method 'awq'", () => {
  const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
  const model = () => textModelFromHf(Object.fromEntries(FILES.map((f) => [f, readLocalModelFile('stories-layerskip', f)])));
  const heldOut = HELD_OUT_PROMPTS.join(' ');

  it('q4 g32 after loading: calibrated on the built-in text, within 10% perplexity of fp32 on held-out text; at load it is refused', async () => {
    const fp32 = await TextEngine.create(ort, 'wasm', model());
    const base = (await fp32.perplexity(heldOut)).perplexity;
    await fp32.dispose();
    const e = await TextEngine.create(ort, 'wasm', model());
    await e.compress({ linear: 'q4', group: 32, method: 'awq' });
    expect(e.weights).toEqual({ linear: 'q4', group: 32, method: 'awq' });
    const ppl = (await e.perplexity(heldOut)).perplexity;
    console.log(`engine q4 g32 awq: held-out perplexity ${ppl.toFixed(4)} vs fp32 ${base.toFixed(4)}`);
    expect(ppl / base - 1).toBeLessThan(0.1);
    await e.dispose();
    // Load-time compression prepares layer by layer with no graphs to measure: AWQ is refused there, not silently RTN.
    await expect(TextEngine.create(ort, 'wasm', model(), { compress: { linear: 'q4', method: 'awq' } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  }, 180_000);
});
