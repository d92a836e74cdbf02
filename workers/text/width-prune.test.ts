/**
 * On-device width pruning end to end on stories260K (5 blocks, 8 query / 4 KV heads, 172 FFN
 * channels), against the reference forward (models/reference):
 * - the probe graphs' o_proj / down_proj input statistics (mean, variance, mean square) equal the
 *   reference block's inputs, tapped position by position;
 * - `pruneWidth('flap')` keeps exactly the units FLAP's definition picks from those reference
 *   statistics (scores by naive loops here), and generation then equals the reference forward of
 *   the checkpoint narrowed by hand with FLAP's biases from the reference means;
 * - Wanda-sp cuts every block alike; width composes with depth pruning and with speculative
 *   decoding (greedy output unchanged by the early exit); a saved width plan compiles again on a
 *   fresh engine; bad input and aborts leave the plan alone.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { blockParams, selectWidth } from '../../models/compress/width-select.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { calibrationWindows } from '../../models/llama/scoring.ts';
import { headSizeOf, type LlamaConfig, type LlamaWeights } from '../../models/llama/types.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { LlamaReference, referenceGreedy } from '../../models/reference/llama-ref.ts';
import { applyBlock } from '../../models/reference/scoring-ref.ts';
import { narrowByHand, type MeansByHand } from '../../models/reference/width-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import { collectLinearInputStats, type CollectedBlockStats } from './activation-stats.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextEngine } from './engine.ts';
import { TextService } from './service.ts';
import { textModelFromLlama2c } from './model.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const bin = () => readLocalModelFile('stories260K', 'stories260K.bin');
const tok = () => readLocalModelFile('stories260K', 'tok512.bin');
const { config: c, weights } = readLlama2cCheckpoint(bin());
const hs = headSizeOf(c);

interface RefStats {
  wo: { mean: Float64Array; meanSquare: Float64Array; variance: Float64Array };
  down: { mean: Float64Array; meanSquare: Float64Array; variance: Float64Array };
}

/** Per block: moments of its o_proj and down_proj inputs over every calibration position, by the reference block (float64 sums). */
function referenceStats(config: LlamaConfig, w: LlamaWeights, tokens: readonly number[]): RefStats[] {
  const kvDim = config.nKvHeads * hs;
  const sums = w.layers.map(() => ({ wo: [new Float64Array(config.nHeads * hs), new Float64Array(config.nHeads * hs)], down: [new Float64Array(config.hiddenDim), new Float64Array(config.hiddenDim)] }));
  let n = 0;
  const add = ([sum, sumSq]: Float64Array[], x: Float32Array) => {
    for (let i = 0; i < x.length; i++) {
      sum![i]! += x[i]!;
      sumSq![i]! += x[i]! * x[i]!;
    }
  };
  for (const window of calibrationWindows(tokens, config.maxSeqLen)) {
    const keys = w.layers.map(() => new Float32Array(window.length * kvDim));
    const values = w.layers.map(() => new Float32Array(window.length * kvDim));
    window.forEach((t, pos) => {
      const x = w.tokenEmbedding.slice(t * config.dim, (t + 1) * config.dim);
      w.layers.forEach((lw, l) => applyBlock(config, lw, x, pos, keys[l]!, values[l]!, { wo: (v) => add(sums[l]!.wo, v), down: (v) => add(sums[l]!.down, v) }));
      n++;
    });
  }
  const moments = ([s, sq]: Float64Array[]) => ({ mean: s!.map((v) => v / n), meanSquare: sq!.map((v) => v / n), variance: sq!.map((v, i) => v / n - (s![i]! / n) ** 2) });
  return sums.map((s) => ({ wo: moments(s.wo), down: moments(s.down) }));
}

/** FLAP's WIFV scores by plain loops over the checkpoint's [out, in] weights. */
function flapByHand(lw: LlamaWeights['layers'][number], s: RefStats) {
  const A = c.nHeads * hs;
  const attention = new Float64Array(A);
  for (let ch = 0; ch < A; ch++) {
    let norm = 0;
    for (let o = 0; o < c.dim; o++) norm += lw.wo[o * A + ch]! ** 2;
    attention[ch] = (s.wo.variance[ch]! * norm) ** 2;
  }
  const ffn = new Float64Array(c.hiddenDim);
  for (let j = 0; j < c.hiddenDim; j++) {
    let norm = 0;
    for (let o = 0; o < c.dim; o++) norm += lw.w2[o * c.hiddenDim + j]! ** 2;
    ffn[j] = s.down.variance[j]! * norm;
  }
  return { attention, ffn };
}

const meansOf = (stats: RefStats[]): MeansByHand[] => stats.map((s) => ({ wo: Float32Array.from(s.wo.mean), down: Float32Array.from(s.down.mean) }));

const newEngine = () => TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()));

describe('width pruning on stories260K', async () => {
  const engine = await newEngine();
  const calibration = engine.tokenIds(DEFAULT_CALIBRATION_TEXT);
  const refStats = referenceStats(c, weights, calibration);
  const prompt = [1, 403, 407, 261];

  it('the probe graphs measure the moments of the reference blocks\' o_proj and down_proj inputs', async () => {
    const got: CollectedBlockStats[] = [];
    await collectLinearInputStats({ ort, backend: 'wasm', weights: prepareWeights(c, weights), attention: 'onnx' }, calibration, (l, s) => void (got[l] = s), { rows: 0 });
    let worst = 0;
    for (let l = 0; l < c.nLayers; l++) {
      for (const k of ['wo', 'down'] as const) {
        for (const m of ['mean', 'meanSquare', 'variance'] as const) {
          const want = refStats[l]![k][m];
          const scale = Math.max(...Array.from(want, Math.abs));
          got[l]![k][m].forEach((v, i) => (worst = Math.max(worst, Math.abs(v - want[i]!) / scale)));
        }
      }
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it("FLAP keeps the units its definition picks from the reference statistics, and generates what the hand-narrowed reference with FLAP's biases generates", async () => {
    const out = await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    const shape = { dim: c.dim, headSize: hs, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
    const want = selectWidth(weights.layers.map((lw, l) => flapByHand(lw, refStats[l]!)), shape, 0.2, 'adaptive');
    expect(out.width.kvHeads).toEqual(want.map((k) => k.kvHeads));
    expect(out.width.ffn).toEqual(want.map((k) => k.ffn));
    expect(out.width.bias).toBe(true);
    expect(engine.plan.width).toEqual(out.width);
    expect(1 - out.params.after / out.params.before).toBeCloseTo(0.2, 2);
    // Adaptive: the blocks do not all keep the same width.
    expect(new Set(out.width.ffn.map((f) => f.length)).size).toBeGreaterThan(1);

    const narrowed = narrowByHand(c, weights, out.width, meansOf(refStats));
    const ref = new LlamaReference(c, narrowed);
    let wantLogits: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (wantLogits = ref.forward(t, p)));
    const got = await engine.logits(prompt);
    let worst = 0;
    got.forEach((v, i) => (worst = Math.max(worst, Math.abs(v - wantLogits[i]!))));
    expect(worst).toBeLessThan(1e-4);
    const done = await generate(engine, 24);
    expect(done).toEqual(referenceGreedy(new LlamaReference(c, narrowed), prompt, 24));
    // The compensation moves the output: without it the logits differ.
    const plain = new LlamaReference(c, narrowByHand(c, weights, { ...out.width, bias: false }, []));
    let moved = 0;
    prompt.forEach((t, p) => (wantLogits = plain.forward(t, p)));
    got.forEach((v, i) => (moved = Math.max(moved, Math.abs(v - wantLogits[i]!))));
    expect(moved).toBeGreaterThan(1e-2);
  });

  it('Wanda-sp takes the same share of every block and no bias; generation matches the reference', async () => {
    await engine.setPlan({ layers: [0, 1, 2, 3, 4] });
    const out = await engine.pruneWidth({ ratio: 0.3, method: 'wanda-sp' });
    expect(out.width.bias).toBe(false);
    const shape = { dim: c.dim, headSize: hs, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
    for (let l = 0; l < c.nLayers; l++) {
      expect(out.width.kvHeads[l]).toHaveLength(c.nKvHeads - 1);
      expect(out.width.ffn[l]!.length).toBe(out.width.ffn[0]!.length);
      expect(1 - blockParams(shape, out.width.kvHeads[l]!.length, out.width.ffn[l]!.length) / blockParams(shape)).toBeCloseTo(0.3, 2);
    }
    expect(await generate(engine, 16)).toEqual(referenceGreedy(new LlamaReference(c, narrowByHand(c, weights, out.width, [])), prompt, 16));
  });

  it('composes with depth pruning and speculative decoding', async () => {
    await engine.setPlan({ layers: [0, 1, 3, 4] });
    const out = await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    expect(out.width.ffn[2]).toHaveLength(c.hiddenDim); // block 2 is not in the plan: untouched
    expect(out.width.kvHeads[2]).toHaveLength(c.nKvHeads);
    expect(engine.plan.layers).toEqual([0, 1, 3, 4]);
    const plain = await generate(engine, 20);
    const spec: number[] = [];
    for await (const ev of engine.generate(prompt, { maxTokens: 20, greedy: true, stopTokens: [], speculate: { exit: 2, draft: 3 } })) {
      if (ev.type === 'token') spec.push(ev.token);
      else expect(ev.stats.plan.width).toEqual(out.width);
    }
    expect(spec).toEqual(plain);
    expect(engine.plan.width).toEqual(out.width);
    // Compensation means measured through blocks 0,1,3,4 (block 3 sees block 1's output): the
    // hand-narrowed reference over the depth-pruned plan, means from the same stream.
    const depthStats = referenceStats(c, { ...weights, layers: [0, 1, 3, 4].map((l) => weights.layers[l]!) }, calibration);
    const means: MeansByHand[] = [];
    [0, 1, 3, 4].forEach((l, i) => (means[l] = meansOf(depthStats)[i]!));
    // Block 2 removes nothing, so its means add no bias (any will do).
    means[2] = meansOf(refStats)[2]!;
    const narrowed = narrowByHand(c, weights, out.width, means);
    expect(plain).toEqual(referenceGreedy(new LlamaReference(c, narrowed, { layers: [0, 1, 3, 4] }), prompt, 20));
  });

  it('a saved width plan compiles again on a fresh engine (means re-measured on the built-in text)', async () => {
    await engine.setPlan({ layers: [0, 1, 2, 3, 4] });
    const { plan } = await engine.pruneWidth({ ratio: 0.25, method: 'flap' });
    const want = await engine.logits(prompt);
    const fresh = await newEngine();
    await fresh.setPlan(JSON.parse(JSON.stringify(plan)));
    const got = await fresh.logits(prompt);
    got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(1e-5));
    await fresh.dispose();
  });

  it('refuses bad ratios, methods and width plans, stops on abort, and leaves the plan alone', async () => {
    await engine.setPlan({ layers: [0, 1, 2, 3, 4] });
    const before = engine.plan;
    const code = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as WhittleError).code;
    for (const ratio of [1, -0.1, Number.NaN]) expect(await code(engine.pruneWidth({ ratio, method: 'flap' }))).toBe('INVALID_ARGUMENT');
    expect(await code(engine.pruneWidth({ ratio: 0.2, method: 'magnitude' as 'flap' }))).toBe('INVALID_ARGUMENT');
    const full = Array.from({ length: c.nLayers }, () => [0, 1, 2, 3]);
    expect(await code(engine.setPlan({ layers: [0, 1], width: { kvHeads: full, ffn: [[0]] } }))).toBe('INVALID_ARGUMENT');
    expect(await code(engine.setPlan({ layers: [0, 1], width: { kvHeads: full.map(() => [4]), ffn: full.map(() => [0]) } }))).toBe('INVALID_ARGUMENT');
    const controller = new AbortController();
    const pending = engine.pruneWidth({ ratio: 0.2, method: 'flap', signal: controller.signal });
    controller.abort();
    expect(await code(pending)).toBe('ABORTED');
    expect(engine.plan).toEqual(before);
    await engine.pruneWidth({ ratio: 0.1, method: 'wanda-sp' });
    // rtn / hqq compress a width plan (width-compress.test.ts); AWQ's folding is full-width only.
    const err = await engine.compress({ linear: 'q8', method: 'awq' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).code).toBe('UNSUPPORTED');
    await engine.dispose();
  });
});

async function generate(engine: TextEngine, n: number): Promise<number[]> {
  for await (const ev of engine.generate([1, 403, 407, 261], { maxTokens: n, greedy: true, stopTokens: [] })) if (ev.type === 'done') return ev.tokens;
  return [];
}

describe('TextService.pruneWidth (what lm.prune({ width }) calls in the worker)', async () => {
  const service = new TextService();
  await service.init({ backend: 'wasm', numThreads: 1 });
  await service.load({ format: 'llama2c', checkpoint: bin(), tokenizer: tok() });

  it('prunes the width, reports it in the plan, and a later depth prune keeps it on the remaining blocks', async () => {
    const result = await service.pruneWidth({ width: 0.2 });
    expect(result.width.bias).toBe(true); // FLAP by default
    expect(result.info.plan.width).toEqual(result.width);
    expect(1 - result.params.after / result.params.before).toBeCloseTo(0.2, 2);
    const done = await service.complete([1, 403, 407], { maxTokens: 12, greedy: true, stopTokens: [] });
    expect(done.tokens).toHaveLength(12);
    expect(done.stats.plan.width).toEqual(result.width);
    const depth = await service.prune({ remove: 1 });
    expect(depth.plan.layers).toHaveLength(4);
    expect(depth.plan.width).toEqual(result.width);
    const err = await service.pruneWidth({ width: 1.5 }).catch((e: unknown) => e);
    expect((err as WhittleError).code).toBe('INVALID_ARGUMENT');
    await service.dispose();
  });
});
