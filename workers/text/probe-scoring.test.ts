/**
 * Block scores and exit profiles computed through the ONNX probe segments (block-scoring.ts,
 * exit-calibration.ts over probe-runner.ts) against the independent oracle
 * (models/reference/scoring-ref.ts: the plain-TypeScript reference, float64 sums), on a random
 * GQA model (two calibration windows, an identity block; the probes run 'onnx' attention whatever
 * the engine's kind), a Qwen2-shaped
 * random model (Q/K/V biases, head size 12, linear RoPE scaling), stories260K and
 * stories-layerskip.
 *
 * Tolerances (float32 graphs against float64 loops; measured: at most 3e-7 relative on the
 * trained models):
 * - perplexities: 1e-5 relative;
 * - influence and angular distance: 1e-5 relative, or 1e-6 absolute for scores near 0 (1 - cos of
 *   a block that barely changes the stream is a difference of two numbers near 1);
 * - exit acceptance: 1e-5 absolute (a mean of probabilities);
 * - exit agreement: equal (a top-1 match per position; no near-ties on these texts).
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import type { BlockScores } from '../../models/llama/scoring.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import type { LlamaConfig, LlamaWeights } from '../../models/llama/types.ts';
import { exitRates, scoreBlocks } from '../../models/reference/scoring-ref.ts';
import { loadModel } from '../../sdk/cli/load.ts';
import { loadOrt } from '../ort/runtime.ts';
import { scoreBlocksOnnx } from './block-scoring.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextEngine } from './engine.ts';
import { profileExits } from './exit-calibration.ts';
import { ProbeRunner } from './probe-runner.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

const relative = (got: number, want: number) => Math.abs(got - want) / Math.abs(want);

function expectScoresClose(got: BlockScores, want: BlockScores): void {
  expect(got.nLayers).toBe(want.nLayers);
  expect(got.positions).toBe(want.positions);
  expect(got.predictions).toBe(want.predictions);
  for (const key of ['influence', 'angular'] as const) {
    expect(got[key]).toHaveLength(want[key].length);
    got[key].forEach((g, l) => expect(Math.abs(g - want[key][l]!), `${key}[${l}]: ${g} vs ${want[key][l]}`).toBeLessThan(Math.max(1e-6, 1e-5 * Math.abs(want[key][l]!))));
  }
  expect(got.perplexity).toHaveLength(want.perplexity.length);
  got.perplexity.forEach((g, l) => expect(relative(g, want.perplexity[l]!), `perplexity[${l}]: ${g} vs ${want.perplexity[l]}`).toBeLessThan(1e-5));
  if (Number.isNaN(want.fullPerplexity)) expect(got.fullPerplexity).toBeNaN();
  else expect(relative(got.fullPerplexity, want.fullPerplexity)).toBeLessThan(1e-5);
}

function expectExitsClose(got: { agreement: number[]; acceptance: number[]; positions: number }, want: { agreement: number[]; acceptance: number[]; positions: number }): void {
  expect(got.positions).toBe(want.positions);
  expect(got.agreement).toEqual(want.agreement);
  got.acceptance.forEach((g, i) => expect(Math.abs(g - want.acceptance[i]!), `acceptance[${i}]: ${g} vs ${want.acceptance[i]}`).toBeLessThan(1e-5));
}

const randomTokens = (n: number, vocab: number, seed: number) => {
  const rand = createRng(seed);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rand() * (vocab - 3)))];
};

/** A copy of `weights` whose block `l` adds nothing to the residual stream (wo = w2 = 0): the identity. */
function withIdentityBlock(weights: LlamaWeights, l: number): LlamaWeights {
  return { ...weights, layers: weights.layers.map((lw, i) => (i === l ? { ...lw, wo: new Float32Array(lw.wo.length), w2: new Float32Array(lw.w2.length) } : lw)) };
}

const probeOf = (config: LlamaConfig, weights: LlamaWeights, attention: AttentionKind, signal?: AbortSignal) => new ProbeRunner({ ort, backend: 'wasm', weights: prepareWeights(config, weights), attention }, signal);

describe('random GQA model (4 query heads over 2 KV heads), two windows, block 2 the identity', () => {
  const { config, weights: raw } = randomLlama({ nLayers: 5, maxSeqLen: 64 }, 7);
  const weights = withIdentityBlock(raw, 2);
  const tokens = randomTokens(90, config.vocabSize, 3); // windows of 64 + 26
  const want = scoreBlocks(config, weights, tokens);

  it('every score matches the oracle, and an engine generating with gqa or plain attention gets the same scores (the probes always run onnx)', async () => {
    const got = await scoreBlocksOnnx(probeOf(config, weights, 'onnx'), config, tokens);
    expectScoresClose(got, want);
    // The identity block: nothing changes, through the graphs too.
    expect(got.influence[2]).toBeLessThan(1e-6);
    expect(relative(got.perplexity[2]!, got.fullPerplexity)).toBeLessThan(1e-6);
    // probe-runner.ts: GroupQueryAttention probes ranked blocks differently on WebGPU, so the
    // source's attention no longer reaches the probe graphs: bit-identical scores.
    const { timing: _, ...scores } = got;
    for (const attention of ['gqa', 'plain'] as const) {
      const { timing: __, ...other } = await scoreBlocksOnnx(probeOf(config, weights, attention), config, tokens);
      expect(other).toEqual(scores);
    }
  });

  it('without perplexities: similarity scores only, the same', async () => {
    const got = await scoreBlocksOnnx(probeOf(config, weights, 'onnx'), config, tokens, { perplexity: false });
    expectScoresClose(got, scoreBlocks(config, weights, tokens, { perplexity: false }));
    expect(got.perplexity).toEqual([]);
  });

  it('exit profile of a pruned, reordered plan matches the oracle (greedy and at temperature 0.7)', async () => {
    const layers = [0, 3, 1, 4];
    for (const temperature of [1, 0.7]) {
      const got = await profileExits(probeOf(config, raw, 'onnx'), config, layers, tokens, { temperature });
      expect(got.layers).toEqual(layers);
      expect(got.agreement[3]).toBe(1);
      expectExitsClose(got, exitRates(config, raw, layers, tokens, temperature));
    }
  });

  it('stops at the first checkpoint once aborted (ABORTED), and bad tokens are INVALID_ARGUMENT', async () => {
    await expect(scoreBlocksOnnx(probeOf(config, weights, 'onnx', AbortSignal.abort()), config, tokens)).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(profileExits(probeOf(config, weights, 'onnx', AbortSignal.abort()), config, [0, 1], tokens)).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(scoreBlocksOnnx(probeOf(config, weights, 'onnx'), config, [1, config.vocabSize])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(scoreBlocksOnnx(probeOf(config, weights, 'onnx'), config, [])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

it('Qwen2-shaped random model (Q/K/V biases, head size 12 != dim / heads, linear RoPE scaling): scores and exits match the oracle', async () => {
  const { config, weights } = randomLlama({ nLayers: 3, headDim: 12, qkvBias: true, tiedEmbeddings: true, ropeScaling: { type: 'linear', factor: 4 } }, 11);
  const tokens = randomTokens(30, config.vocabSize, 5);
  expectScoresClose(await scoreBlocksOnnx(probeOf(config, weights, 'onnx'), config, tokens), scoreBlocks(config, weights, tokens));
  expectExitsClose(await profileExits(probeOf(config, weights, 'plain'), config, [0, 1, 2], tokens), exitRates(config, weights, [0, 1, 2], tokens));
});

describe('trained models through the engine', () => {
  it('stories260K: TextEngine.scoreBlocks on the built-in calibration text matches the oracle', async () => {
    const model = loadModel('stories260K');
    const engine = await TextEngine.create(ort, 'wasm', model);
    const tokens = engine.tokenIds(DEFAULT_CALIBRATION_TEXT);
    expectScoresClose(await engine.scoreBlocks(tokens), scoreBlocks(model.config, model.weights, tokens));
    await engine.dispose();
  });

  it('stories-layerskip: block scores and the exit profile (greedy and sampled) match the oracle', async () => {
    const model = loadModel('stories-layerskip');
    const engine = await TextEngine.create(ort, 'wasm', model);
    const ids = engine.tokenIds(DEFAULT_CALIBRATION_TEXT);
    // A short text: the oracle takes ~0.7 ms per block and position here.
    expectScoresClose(await engine.scoreBlocks(ids.slice(0, 96)), scoreBlocks(model.config, model.weights, ids.slice(0, 96)));
    const all = [0, 1, 2, 3, 4, 5, 6, 7];
    const greedy = await engine.calibrateExits();
    expectExitsClose(greedy.profile, exitRates(model.config, model.weights, all, ids.slice(0, 128)));
    const sampled = await engine.calibrateExits({ greedy: false, temperature: 0.8 });
    expectExitsClose(sampled.profile, exitRates(model.config, model.weights, all, ids.slice(0, 128), 0.8));
    await engine.dispose();
  }, 120_000);
});
