/**
 * Prefill in chunks (`PlanRunner.prefillChunk`): a prompt run as consecutive chunks must give the
 * logits of one pass over the whole prompt, and leave caches that decode on identically, for
 * every attention kind and for plans split into segments. Checked against the independent
 * reference (models/reference/llama-ref.ts) and against the same runner unchunked.
 */
import { describe, expect, it, vi } from 'vitest';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import type { LlamaConfig, LlamaPlan, LlamaWeights } from '../../models/llama/types.ts';
import { LlamaReference } from '../../models/reference/llama-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { argmax } from './sampler.ts';
import type * as Ort from 'onnxruntime-web';
import { relativeLogitError } from '../../models/llama/testing/logit-error.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const storiesPrompt = [1, 403, 407, 261, 378, 432, 383, 286, 261, 300, 417];

async function check(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, attention: AttentionKind, chunk: number, exit = false): Promise<void> {
  const prompt = storiesPrompt.map((t) => t % config.vocabSize);
  const prepared = prepareWeights(config, weights);
  const chunked = await PlanRunner.compile(ort, 'wasm', prepared, plan, attention);
  const whole = await PlanRunner.compile(ort, 'wasm', prepared, plan, attention);
  chunked.prefillChunk = chunk;
  whole.prefillChunk = Infinity;
  const ref = new LlamaReference(config, weights, plan);
  let want: Float32Array = new Float32Array(0);
  prompt.forEach((t, p) => (want = ref.forward(t, p, { exit })));

  let a = await chunked.step(prompt, { exit });
  let b = await whole.step(prompt, { exit });
  expect(chunked.position).toBe(prompt.length);
  expect(relativeLogitError(a, want)).toBeLessThan(1e-4);
  expect(relativeLogitError(a, b)).toBeLessThan(1e-5);
  // Greedy decode on both: same tokens, and every step still equals the reference.
  for (let s = 0; s < 4; s++) {
    const token = argmax(a);
    expect(argmax(b)).toBe(token);
    const wantNext = ref.forward(token, prompt.length + s, { exit });
    a = await chunked.step([token], { exit });
    b = await whole.step([token], { exit });
    expect(relativeLogitError(a, wantNext)).toBeLessThan(1e-4);
    expect(relativeLogitError(a, b)).toBeLessThan(1e-5);
  }
  await Promise.all([chunked.release(), whole.release()]);
}

describe.each(['onnx', 'gqa', 'plain'] as const)('chunked prefill (%s attention)', (attention) => {
  it('stories260K full depth, chunks of 4 (4 + 4 + 3)', () => check(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, attention, 4));
  it('stories260K, chunks of 1 (prefill as single steps)', () => check(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, attention, 1));
  it('stories260K split at an exit (2 segments), full path, chunks of 3', () => check(stories.config, stories.weights, { layers: [0, 1, 3, 4], exit: 2 }, attention, 3));
  it('stories260K early-exit path, chunks of 5', () => check(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4], exit: 2 }, attention, 5, true));
  it('random GQA model (half RoPE, untied), chunks of 2', () => {
    const m = randomLlama();
    return check(m.config, m.weights, { layers: [0, 1, 2] }, attention, 2);
  });
});

describe('chunked prefill limits', () => {
  it('no run sees more than prefillChunk positions', async () => {
    const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(stories.config, stories.weights), { layers: [0, 1, 2, 3, 4] }, 'onnx');
    runner.prefillChunk = 4;
    // Every session's run goes through the class's prototype (the runner's sessions are private).
    const sessions = ort.InferenceSession as unknown as { prototype: Ort.InferenceSession };
    const run = vi.spyOn(sessions.prototype, 'run');
    try {
      await runner.step(storiesPrompt);
      const sizes = run.mock.calls.map(([feeds]) => (feeds as Ort.InferenceSession.FeedsType).input_ids!.dims[1]);
      expect(sizes).toEqual([4, 4, 3]);
    } finally {
      run.mockRestore();
      await runner.release();
    }
  });

  it('refuses a prompt past the context before running any chunk', async () => {
    const m = randomLlama({ maxSeqLen: 16 });
    const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(m.config, m.weights), { layers: [0, 1] }, 'onnx');
    runner.prefillChunk = 4;
    await runner.step([1, 2, 3]);
    await expect(runner.step(Array.from({ length: 14 }, (_, i) => 1 + (i % 30)))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(runner.position).toBe(3);
    await runner.release();
  });
});
