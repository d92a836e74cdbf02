import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import type { LlamaConfig, LlamaPlan, LlamaWeights } from '../../models/llama/types.ts';
import { LlamaReference } from '../../models/reference/llama-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

function expectClose(got: Float32Array, want: Float32Array, rel = 1e-4): void {
  expect(got.length).toBe(want.length);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  // relative to the logit range: per-element relative error is meaningless near zero
  expect(worst / scale).toBeLessThan(rel);
}

/** Prefill `prompt` in one step, then decode `follow` one token at a time, comparing every step. */
async function compare(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, attention: AttentionKind, exit: boolean, prompt: number[], follow: number[]) {
  const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(config, weights), plan, attention);
  const ref = new LlamaReference(config, weights, plan);
  let want: Float32Array = new Float32Array(0);
  prompt.forEach((t, p) => (want = ref.forward(t, p, { exit })));
  expectClose(await runner.step(prompt, { exit }), want);
  let pos = prompt.length;
  for (const t of follow) {
    expectClose(await runner.step([t], { exit }), ref.forward(t, pos++, { exit }));
  }
  await runner.release();
}

const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const prompt = [1, 403, 407, 261, 378];
const follow = [432, 383, 286, 261];

describe.each(['plain', 'gqa', 'onnx'] as const)('PlanRunner (%s attention) vs reference', (attention) => {
  it('stories260K full depth', () => compare(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, attention, false, prompt, follow));
  it('stories260K skipping block 2', () => compare(stories.config, stories.weights, { layers: [0, 1, 3, 4] }, attention, false, prompt, follow));
  it('stories260K early exit after 2 blocks', () => compare(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4], exit: 2 }, attention, true, prompt, follow));
  it('stories260K exit plan, full path', () => compare(stories.config, stories.weights, { layers: [0, 2, 4], exit: 1 }, attention, false, prompt, follow));
  it('random GQA model, half RoPE, untied, theta 5e5', () => {
    const m = randomLlama();
    return compare(m.config, m.weights, { layers: [0, 1, 2] }, attention, false, [1, 5, 9, 33], [7, 0, 39]);
  });
});

describe('PlanRunner shapes', () => {
  it.each(['plain', 'onnx'] as const)('%s attention takes any head size (hs 6, MHA, tied)', (attention) => {
    const m = randomLlama({ dim: 24, nHeads: 4, nKvHeads: 4, tiedEmbeddings: true, ropeLayout: 'interleaved' }, 7);
    return compare(m.config, m.weights, { layers: [2, 0], exit: 1 }, attention, true, [3, 4], [5, 6]);
  });
  it.each(['plain', 'onnx'] as const)('%s attention with head size 20 and GQA (the trained models\' shape)', (attention) => {
    const m = randomLlama({ dim: 80, nHeads: 4, nKvHeads: 2, hiddenDim: 96, tiedEmbeddings: true }, 9);
    return compare(m.config, m.weights, { layers: [0, 1, 2], exit: 2 }, attention, false, [3, 4, 5], [6, 7]);
  });
});

describe('PlanRunner abort between segments', () => {
  it("releases the hidden state a segment handed on when the step aborts before the next segment runs (a GPU buffer on WebGPU)", async () => {
    // An early exit makes two segments ([0, 1] with the exit head, [2, 3, 4]): on the full path
    // segment 0's hidden_out feeds segment 1. The signal fires while segment 0 runs, so the step
    // stops before segment 1 consumed that hidden state.
    const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(stories.config, stories.weights), { layers: [0, 1, 2, 3, 4], exit: 2 }, 'gqa');
    const controller = new AbortController();
    const handedOn: { dispose: () => void; disposed: boolean }[] = [];
    // The class of the sessions the runner made (createSession's wrapper calls its run per call).
    const session = (runner as unknown as { segments: { session: object }[] }).segments[0]!.session;
    const proto = Object.getPrototypeOf(session) as { run: (...args: unknown[]) => Promise<Record<string, { dispose: () => void }>> };
    const run = proto.run;
    proto.run = async function (this: unknown, ...args: unknown[]) {
      const out = await run.apply(this, args);
      const hidden = out.hidden_out;
      if (hidden) {
        const entry = { dispose: hidden.dispose.bind(hidden), disposed: false };
        hidden.dispose = () => ((entry.disposed = true), entry.dispose());
        handedOn.push(entry);
        controller.abort();
      }
      return out;
    };
    try {
      await expect(runner.step([1, 403], { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    } finally {
      proto.run = run;
      await runner.release();
    }
    expect(handedOn).toHaveLength(1);
    expect(handedOn[0]!.disposed).toBe(true);
  });
});
