/**
 * Byte-bounded segments (plan.ts splitSegments, PlanRunner.compile's `segmentBytes`) and
 * layerwise weights (prepare.ts prepareLayerwiseFrom): a plan compiled as one session per block,
 * from weights prepared one segment at a time, must compute what the reference forward does
 * (models/reference/, plain TypeScript over the checkpoint's own arrays) on every path the
 * runner has: prefill, decode, early-exit drafts and verification.
 */
import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { prepareLayerwiseFrom, prepareWeights } from '../../models/llama/prepare.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import { inMemoryReader } from '../../models/llama/weight-reader.ts';
import type { LlamaConfig, LlamaPlan, LlamaWeights } from '../../models/llama/types.ts';
import { LlamaReference } from '../../models/reference/llama-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { relativeLogitError } from '../../models/llama/testing/logit-error.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const prompt = [1, 403, 407, 261, 378];
const follow = [432, 383, 286];

/** One session per block: any budget below one block's bytes. */
const PER_BLOCK = 1;

async function compareSplit(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, exit: boolean, layerwise: boolean, tokens = { prompt, follow }): Promise<void> {
  const { prompt: first, follow: next } = tokens;
  const source = layerwise ? await prepareLayerwiseFrom(config, inMemoryReader(weights)) : prepareWeights(config, weights);
  const runner = await PlanRunner.compile(ort, 'wasm', source, plan, 'onnx', undefined, { segmentBytes: PER_BLOCK });
  // Each kept block is its own session (the exit adds no boundary beyond its block).
  expect(runner.runsPerStep).toBe(plan.layers.length);
  const ref = new LlamaReference(config, weights, plan);
  let want: Float32Array = new Float32Array(0);
  first.forEach((t, p) => (want = ref.forward(t, p, { exit })));
  expect(relativeLogitError(await runner.step(first, { exit }), want)).toBeLessThan(1e-4);
  let pos = first.length;
  for (const t of next) expect(relativeLogitError(await runner.step([t], { exit }), ref.forward(t, pos++, { exit }))).toBeLessThan(1e-4);
  await runner.release();
}

describe('plans compiled as one session per block', () => {
  it.each([false, true])('full depth (layerwise weights: %s)', (layerwise) => compareSplit(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, false, layerwise));
  it('a pruned plan', () => compareSplit(stories.config, stories.weights, { layers: [0, 2, 3] }, false, true));
  it.each([false, true])('an early-exit plan, exit path (%s) and full path', (exit) => compareSplit(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4], exit: 2 }, exit, true));
  it('a random untied GQA model with Q/K/V biases', () => {
    const m = randomLlama({ qkvBias: true }, 3);
    return compareSplit(m.config, m.weights, { layers: [0, 1, 2] }, false, true, { prompt: [1, 5, 9, 33], follow: [7, 0] });
  });

  it('drafts through the exit and verifies through the later blocks, as one session per block', async () => {
    const plan = { layers: [0, 1, 2, 3, 4], exit: 2 };
    const runner = await PlanRunner.compile(ort, 'wasm', await prepareLayerwiseFrom(stories.config, inMemoryReader(stories.weights)), plan, 'onnx', undefined, { segmentBytes: PER_BLOCK });
    const ref = new LlamaReference(stories.config, stories.weights, plan);
    await runner.step(prompt.slice(0, -1));
    prompt.slice(0, -1).forEach((t, p) => ref.forward(t, p));
    // Two drafts at the exit, then one verification of both through blocks 2..4.
    const P = prompt.length - 1;
    const d1 = await runner.draftStep(prompt[P]!);
    expect(relativeLogitError(d1.logits, ref.forward(prompt[P]!, P, { exit: true }))).toBeLessThan(1e-4);
    const d2 = await runner.draftStep(follow[0]!);
    expect(relativeLogitError(d2.logits, ref.forward(follow[0]!, P + 1, { exit: true }))).toBeLessThan(1e-4);
    const hidden = new Float32Array([...d1.hidden, ...d2.hidden]);
    const verified = await runner.verify(hidden, 2);
    const vocab = stories.config.vocabSize;
    // The full path at the two drafted positions, from a fresh reference.
    const fresh = new LlamaReference(stories.config, stories.weights, plan);
    let atP: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (atP = fresh.forward(t, p)));
    expect(relativeLogitError(verified.subarray(0, vocab), atP)).toBeLessThan(1e-4);
    expect(relativeLogitError(verified.subarray(vocab), fresh.forward(follow[0]!, P + 1))).toBeLessThan(1e-4);
    await runner.release();
  });

  it.each([
    ['q8', { linear: 'q8' }],
    ['q8 with 2:4 magnitude masks', { linear: 'q8', sparsity: { pattern: '2:4', method: 'magnitude' } }],
  ] as const)('compressed layerwise weights (%s) compile to what held compressed weights do', async (_, setting) => {
    const m = randomLlama({ tiedEmbeddings: true }, 5);
    const plan = { layers: [0, 1, 2] };
    const held = await PlanRunner.compile(ort, 'wasm', prepareWeights(m.config, m.weights, { weights: setting }), plan, 'onnx');
    const split = await PlanRunner.compile(ort, 'wasm', await prepareLayerwiseFrom(m.config, inMemoryReader(m.weights), { weights: setting }), plan, 'onnx', undefined, { segmentBytes: PER_BLOCK });
    expect(split.runsPerStep).toBe(3);
    const tokens = [1, 5, 9, 33];
    expect(relativeLogitError(await split.step(tokens), await held.step(tokens))).toBeLessThan(1e-5);
    await held.release();
    await split.release();
  });

  it.each([
    ['fp32', { linear: 'f32' }],
    ['q8 with an int8 head', { linear: 'q8', head: 'q8' }],
  ] as const)('a big table (%s): tokens looked up on the host, the head built from stored rows, the table never read whole', async (_, setting) => {
    const m = randomLlama({ tiedEmbeddings: true }, 7);
    const reader = inMemoryReader(m.weights);
    let tableReads = 0;
    const counting = { ...reader, tokenEmbedding: () => (tableReads++, reader.tokenEmbedding()) };
    const plan = { layers: [0, 1, 2] };
    const held = await PlanRunner.compile(ort, 'wasm', prepareWeights(m.config, m.weights, { weights: setting }), plan, 'onnx');
    // hostLookupBytes 0: every table counts as big; held weights have no rows to read, so they gather.
    const streamed = await PlanRunner.compile(ort, 'wasm', await prepareLayerwiseFrom(m.config, counting, { weights: setting }), plan, 'onnx', undefined, { hostLookupBytes: 0 });
    expect(tableReads).toBe(0);
    const tokens = [1, 5, 9, 33];
    expect(relativeLogitError(await streamed.step(tokens), await held.step(tokens))).toBeLessThan(1e-5);
    expect(relativeLogitError(await streamed.step([7]), await held.step([7]))).toBeLessThan(1e-5);
    // q8: that step ran on the decode kernels on both sides, the streamed one reading its token row on the host.
    expect(streamed.kernelSteps).toBe(setting.linear === 'q8' ? 1 : 0);
    await held.release();
    await streamed.release();
  });

  it.each([
    ['held weights: split, tokens looked up in the held table', false, 3],
    ['a reader that reads rows: split, tokens looked up on the host', true, 3],
  ] as const)('a tied head that reads the embedding table, %s', async (_, rows, runs) => {
    const m = randomLlama({ tiedEmbeddings: true }, 6);
    const source = rows ? await prepareLayerwiseFrom(m.config, inMemoryReader(m.weights)) : prepareWeights(m.config, m.weights);
    const runner = await PlanRunner.compile(ort, 'wasm', source, { layers: [0, 1, 2] }, 'onnx', { headFromEmbedding: true }, { segmentBytes: PER_BLOCK });
    expect(runner.runsPerStep).toBe(runs);
    const ref = new LlamaReference(m.config, m.weights, { layers: [0, 1, 2] });
    let want: Float32Array = new Float32Array(0);
    [1, 5, 9].forEach((t, p) => (want = ref.forward(t, p)));
    expect(relativeLogitError(await runner.step([1, 5, 9]), want)).toBeLessThan(1e-4);
    expect(relativeLogitError(await runner.step([33]), ref.forward(33, 3))).toBeLessThan(1e-4);
    await runner.release();
  });
});
