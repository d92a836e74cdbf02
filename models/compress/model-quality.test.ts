/**
 * Whole models compiled with compressed weights against the same model in fp32, through the real
 * graphs (buildSegment, 'onnx' attention) on onnxruntime-web WASM: logits per method within a
 * stated tolerance, greedy tokens, and held-out perplexity of stories-layerskip per config.
 *
 * Each graph is run over the whole sequence from position 0 (no KV cache): the quantity under
 * test is the weights, so the runner's cache handling (tested elsewhere) is left out.
 * Perplexity text: the held-out story openings (models/llama/testing/held-out-prompts.ts), each
 * its own window from BOS, plus the built-in calibration prose (workers/text/calibration.ts),
 * which is hand-written TinyStories-style text the models never trained on; round-to-nearest
 * uses no calibration data, so it is held out for every method here.
 *
 * The last block holds every method (rtn / hqq / awq) on all three trained models to issue #13's
 * goals through quality-table.ts, whose text split keeps AWQ's calibration half of that prose
 * out of the scored text.
 */
import { describe, expect, it } from 'vitest';
import type * as Ort from 'onnxruntime-web';
import { createSession, loadOrt } from '../../workers/ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from '../../workers/text/calibration.ts';
import { TextTokenizer } from '../../workers/text/tokenizer.ts';
import { readHfModel } from '../import/hf/model.ts';
import { buildSegment } from '../llama/graph.ts';
import { prepareWeights, type PreparedWeights } from '../llama/prepare.ts';
import { HELD_OUT_PROMPTS } from '../llama/testing/held-out-prompts.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import { fullPlan, type LlamaConfig, type LlamaWeights, type WeightsSetting } from '../llama/types.ts';
import { readLocalModelFile } from '../local.ts';
import { linearBytes } from './linear.ts';
import { markdownTable, QUALITY_CONFIGS, QUALITY_MODELS, qualityTable } from './quality-table.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const MASKED = -3.0e38;

/** A compiled full-depth graph that returns every position's logits [1, S, vocab]. */
class FullModel {
  private constructor(private readonly session: Ort.InferenceSession, private readonly w: PreparedWeights) {}

  static async compile(w: PreparedWeights): Promise<FullModel> {
    const layers = fullPlan(w.config).layers;
    const graph = buildSegment(w, { layers, embed: true, head: 'final', hiddenOut: false, allLogits: true }, 'onnx');
    return new FullModel(await createSession(ort, graph.built, 'wasm'), w);
  }

  /** logits [S, vocab] for `tokens` from position 0. */
  async logits(tokens: number[]): Promise<Float32Array> {
    const c = this.w.config;
    const S = tokens.length;
    const mask = new Float32Array(S * S);
    for (let r = 0; r < S; r++) mask.fill(MASKED, r * S + r + 1, (r + 1) * S);
    const feeds: Record<string, Ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, S]),
      position: new ort.Tensor('int64', BigInt64Array.of(0n), [1]),
      attention_mask: new ort.Tensor('float32', mask, [S, S]),
    };
    for (let l = 0; l < c.nLayers; l++) {
      feeds[`past_key.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.nKvHeads, 0, this.w.headSize]);
      feeds[`past_value.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.nKvHeads, 0, this.w.headSize]);
    }
    const out = await this.session.run(feeds, ['logits']);
    return out.logits!.data as Float32Array;
  }

  async greedy(prompt: number[], n: number): Promise<number[]> {
    const tokens = [...prompt];
    const V = this.w.config.vocabSize;
    for (let i = 0; i < n; i++) {
      const logits = await this.logits(tokens);
      tokens.push(argmax(logits.subarray((tokens.length - 1) * V, tokens.length * V)));
    }
    return tokens.slice(prompt.length);
  }

  /** Sum of -log p(next token) over a window, and the number of predictions. */
  async nll(window: number[]): Promise<{ nll: number; count: number }> {
    const V = this.w.config.vocabSize;
    const logits = await this.logits(window);
    let nll = 0;
    for (let s = 0; s + 1 < window.length; s++) {
      const row = logits.subarray(s * V, (s + 1) * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll -= row[window[s + 1]!]! - max - Math.log(sum);
    }
    return { nll, count: window.length - 1 };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

function argmax(xs: Float32Array): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i]! > xs[best]!) best = i;
  return best;
}

/** max |a - b| over the range of b: per-element relative error is meaningless near zero. */
function relLogitError(a: Float32Array, b: Float32Array): number {
  let lo = Infinity;
  let hi = -Infinity;
  let worst = 0;
  for (let i = 0; i < b.length; i++) {
    lo = Math.min(lo, b[i]!);
    hi = Math.max(hi, b[i]!);
    worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  }
  return worst / (hi - lo);
}

function weightBytes(w: PreparedWeights): number {
  return w.layers.reduce((n, l) => n + linearBytes(l.qkv) + linearBytes(l.wo) + linearBytes(l.gateUp) + linearBytes(l.down), 0) + linearBytes(w.head);
}

interface Method { id: string; setting: WeightsSetting | null; logitTol: number }

/**
 * Logit tolerances: max |logit - fp32 logit| over the fp32 logit range, every position of every
 * prompt. Each is set from the rounding the method adds, at 2-3x what was measured on both models
 * (stories-layerskip / the random model, onnxruntime-web 1.30 WASM):
 * - q8 g32 MatMulNBits, fp32 activations: 256 levels per group of 32, relative weight error
 *   ~0.3%, averaging over K: measured 0.33% / 0.33%: 1%.
 * - q8 int8 per channel (DynamicQuantizeMatMul): coarser steps (max |w| of a whole column / 127)
 *   and uint8 activations per tensor (step range(x) / 255): measured 1.3% / 0.7%: 3%.
 * - q4 (any group, either kernel): 16 levels per group, relative RMS weight error 8-10% (g32 to
 *   g128 on stories-layerskip), partly averaging out over K and blocks: measured 2.7-5.1%: 12%.
 *   Greedy agreement and perplexity carry the meaning for q4; the logit bound catches a wrong
 *   layout, which moves logits by the whole logit range.
 */
const Q8_INT8 = 0.03;
const Q8_NBITS = 0.01;
const Q4 = 0.12;
const METHODS: Method[] = [
  { id: 'f32', setting: null, logitTol: 0 },
  { id: 'q8 int8 per-channel (DQMatMul)', setting: { linear: 'q8', kernel: 'int8', head: 'q8' }, logitTol: Q8_INT8 },
  { id: 'q8 g32 (MatMulNBits)', setting: { linear: 'q8', kernel: 'nbits', group: 32, head: 'q8' }, logitTol: Q8_NBITS },
  { id: 'q4 g32 (MatMulNBits, acc 1)', setting: { linear: 'q4', kernel: 'nbits', group: 32, head: 'q8' }, logitTol: Q4 },
  { id: 'q4 g32 (dequantized, WASM auto for a small model)', setting: { linear: 'q4', group: 32 }, logitTol: Q4 },
  { id: 'q4 g32 (the grid as int8, WASM auto for a large model)', setting: { linear: 'q4', group: 32, kernel: 'int8', head: 'q8' }, logitTol: Q4 },
  { id: 'q4 g64 (MatMulNBits, acc 1)', setting: { linear: 'q4', kernel: 'nbits', group: 64, head: 'q8' }, logitTol: Q4 },
  { id: 'q4 g128 (MatMulNBits, acc 1)', setting: { linear: 'q4', kernel: 'nbits', group: 128, head: 'q8' }, logitTol: Q4 },
];

/** The random model: uniform weights, the hard case for round-to-nearest (no mass near 0). */
const RANDOM_METHODS: Method[] = [
  { id: 'f32', setting: null, logitTol: 0 },
  { id: 'q8 int8 per-channel (DQMatMul)', setting: { linear: 'q8', kernel: 'int8', head: 'q8' }, logitTol: Q8_INT8 },
  { id: 'q8 g32 (MatMulNBits)', setting: { linear: 'q8', kernel: 'nbits', group: 32, head: 'q8' }, logitTol: Q8_NBITS },
  { id: 'q4 g32 (MatMulNBits, acc 1)', setting: { linear: 'q4', kernel: 'nbits', group: 32, head: 'q8' }, logitTol: Q4 },
  // WASM's kernel has no int8-activation path: accuracy_level 4 gives accuracy_level 1's result here.
  { id: 'q4 g32 (MatMulNBits, acc 4)', setting: { linear: 'q4', kernel: 'nbits', group: 32, head: 'q8', accuracyLevel: 4 }, logitTol: Q4 },
  { id: 'q4 g64 (dequantized)', setting: { linear: 'q4', kernel: 'dequantized', group: 64, head: 'f32' }, logitTol: Q4 },
];

interface MethodResult { id: string; bytes: number; worst: number; prefix: number; agree: number; total: number; ppl: number; tokens: number }

/**
 * Every method against fp32 on `prompts` (logits, greedy tokens for `greedyTokens` steps, top-1
 * agreement teacher-forced on fp32's continuation) and perplexity over `windows`.
 */
async function compareMethods(c: LlamaConfig, weights: LlamaWeights, methods: Method[], prompts: number[][], greedyTokens: number, windows: number[][]): Promise<MethodResult[]> {
  const fp32 = await FullModel.compile(prepareWeights(c, weights));
  const refLogits = await Promise.all(prompts.map((p) => fp32.logits(p)));
  const refGreedy = await Promise.all(prompts.map((p) => fp32.greedy(p, greedyTokens)));
  const V = c.vocabSize;
  const results: MethodResult[] = [];
  for (const m of methods) {
    const prepared = prepareWeights(c, weights, m.setting ? { weights: m.setting, backend: 'wasm' } : {});
    const model = m.setting ? await FullModel.compile(prepared) : fp32;
    let worst = 0;
    for (let i = 0; i < prompts.length; i++) worst = Math.max(worst, relLogitError(await model.logits(prompts[i]!), refLogits[i]!));
    let prefix = 0;
    let agree = 0;
    let total = 0;
    for (let i = 0; i < prompts.length; i++) {
      const got = await model.greedy(prompts[i]!, greedyTokens);
      let j = 0;
      while (j < greedyTokens && got[j] === refGreedy[i]![j]) j++;
      prefix += j;
      const seq = [...prompts[i]!, ...refGreedy[i]!];
      const logits = await model.logits(seq.slice(0, -1));
      for (let s = prompts[i]!.length - 1; s < seq.length - 1; s++) {
        total++;
        if (argmax(logits.subarray(s * V, (s + 1) * V)) === seq[s + 1]) agree++;
      }
    }
    let nll = 0;
    let tokens = 0;
    for (const w of windows) {
      const r = await model.nll(w);
      nll += r.nll;
      tokens += r.count;
    }
    results.push({ id: m.id, bytes: weightBytes(prepared), worst, prefix, agree, total, ppl: Math.exp(nll / tokens), tokens });
    if (model !== fp32) await model.release();
  }
  await fp32.release();
  return results;
}

function table(results: MethodResult[], greedyTotal: number): string {
  const base = results[0]!.ppl;
  return [
    '| method | linear+head bytes | max logit error / range | greedy tokens = fp32 (to first divergence) | top-1 agreement on fp32 continuation | held-out ppl | vs fp32 |',
    '|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.id} | ${(r.bytes / 1024).toFixed(0)} KiB | ${r.worst.toFixed(4)} | ${r.prefix}/${greedyTotal} | ${((100 * r.agree) / r.total).toFixed(1)}% | ${r.ppl.toFixed(4)} (${r.tokens} tokens) | ${(100 * (r.ppl / base - 1)).toFixed(2)}% |`),
  ].join('\n');
}

const files = Object.fromEntries(['config.json', 'model.safetensors'].map((n) => [n, readLocalModelFile('stories-layerskip', n)]));
const layerskip = readHfModel(files);
const tokenizer = TextTokenizer.fromJson(JSON.parse(new TextDecoder().decode(readLocalModelFile('stories-layerskip', 'tokenizer.json'))) as unknown);

describe('stories-layerskip with compressed weights', () => {
  const c: LlamaConfig = layerskip.config;
  const encode = (text: string) => [c.bosTokenId, ...tokenizer.encode(text)];
  const prompts = HELD_OUT_PROMPTS.slice(0, 6).map(encode);
  // Held-out text: every opening on its own, then the calibration prose in context-sized windows.
  const prose = encode(DEFAULT_CALIBRATION_TEXT);
  const windows = [...HELD_OUT_PROMPTS.map(encode)];
  for (let i = 0; i < prose.length; i += c.maxSeqLen) windows.push(i === 0 ? prose.slice(0, c.maxSeqLen) : [c.bosTokenId, ...prose.slice(i, i + c.maxSeqLen - 1)]);
  const GREEDY = 24;

  it('logits within tolerance of fp32; q8 perplexity within 1% and q4 g32 within 10% of fp32', async () => {
    const results = await compareMethods(c, layerskip.weights, METHODS, prompts, GREEDY, windows);
    console.log(table(results, prompts.length * GREEDY));
    const base = results[0]!.ppl;
    results.forEach((r, i) => {
      expect(r.worst).toBeLessThanOrEqual(METHODS[i]!.logitTol);
      // The goals; q4 g64/g128 are held to the g32 goal too.
      expect(r.ppl / base - 1).toBeLessThan(METHODS[i]!.setting?.linear === 'q8' ? 0.01 : 0.1);
    });
    // The compressed forms really are smaller (padding makes g64/g128 larger than g32 at K = 160, 432).
    expect(results[1]!.bytes).toBeLessThan(results[0]!.bytes / 3.5);
    expect(results[3]!.bytes).toBeLessThan(results[0]!.bytes / 5.5);
  }, 300_000);
});

describe('random GQA model (Qwen2-style biases, half RoPE) with compressed weights', () => {
  // dim 64 and hidden 128: groups of 32/64 fit K; 128 pads. hs 8, 8 heads over 2 KV heads.
  const { config, weights } = randomLlama({ dim: 64, hiddenDim: 128, nHeads: 8, nKvHeads: 2, vocabSize: 96, maxSeqLen: 64, qkvBias: true }, 21, 0.2);
  const prompts = [[1, 5, 9, 33, 4], [1, 70, 71, 2, 90, 12], [1, 40]];
  const windows = [Array.from({ length: 64 }, (_, i) => (i === 0 ? 1 : (i * 37) % 96))];

  it('logits within tolerance of fp32 for every method', async () => {
    const results = await compareMethods(config, weights, RANDOM_METHODS, prompts, 8, windows);
    console.log(table(results, prompts.length * 8));
    results.forEach((r, i) => expect(r.worst).toBeLessThanOrEqual(RANDOM_METHODS[i]!.logitTol));
  }, 120_000);
});

describe('quality table: every method on the three trained models (quality-table.ts)', () => {
  // The goal rows only (q8 both kernels, q4 g32); the script prints the g64 / g128 rows too.
  const configs = QUALITY_CONFIGS.filter((c) => c.weights !== 'q4' || c.group === 32);

  it('q8 within 1% of fp32 perplexity and q4 g32 within 10%, for rtn, hqq and awq', async () => {
    const rows = await qualityTable(QUALITY_MODELS, configs, ort);
    console.log(markdownTable(rows));
    expect(rows).toHaveLength(QUALITY_MODELS.length * configs.length);
    const asInt8 = (r: (typeof rows)[number]) => r.kernel.includes('as int8');
    for (const r of rows) {
      // Every method meets both goals on every model (README.md's table); stories260K's q4 g32
      // is the closest, at +8.8-9.2%.
      if (r.weights === 'q8') expect(r.perplexity_ratio - 1, `${r.model} q8 ${r.method}`).toBeLessThan(0.01);
      if (r.weights === 'q4' && !asInt8(r)) expect(r.perplexity_ratio - 1, `${r.model} q4 g32 ${r.method}`).toBeLessThan(0.1);
    }
    // The 4-bit grid requantized to int8 (WASM's q4 for models whose fp32 copy would be large;
    // never chosen for these small ones) adds the int8 kernel's own damage, uint8 activations
    // included: measured 1.05-1.5x the packed grid's KL to fp32, and stories260K rtn at
    // +10.2% perplexity (hqq +8.8%). Bound: within 12%, and its KL within 2x the packed grid's.
    for (const r of rows.filter(asInt8)) {
      const packed = rows.find((p) => p.model === r.model && p.weights === 'q4' && p.method === r.method && p.kernel === 'MatMulNBits')!;
      expect(r.perplexity_ratio - 1, `${r.model} q4 g32 ${r.method} as int8`).toBeLessThan(0.12);
      expect(r.kl_to_f32, `${r.model} q4 g32 ${r.method} as int8: KL`).toBeLessThan(2 * packed.kl_to_f32);
    }
  }, 1_200_000);
});
