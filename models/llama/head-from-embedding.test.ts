/**
 * `buildSegment(..., { headFromEmbedding: true })`: a tied fp32 head multiplies by the embedding
 * table itself (com.microsoft.FusedMatMul, transB = 1) instead of the transposed copy, so the
 * session holds the vocab x dim matrix once. Checked: which graphs take it (tied fp32 heads
 * only), what it saves, and that the runner built with it still gives the independent
 * reference's logits within 1e-4 for every attention kind, at prefill and at each decode step.
 */
import { describe, expect, it } from 'vitest';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { PlanRunner } from '../../workers/text/runner.ts';
import { LlamaReference } from '../reference/llama-ref.ts';
import { buildSegment, type AttentionKind } from './graph.ts';
import { prepareWeights } from './prepare.ts';
import { randomLlama } from './testing/random-model.ts';
import type { Segment } from './plan.ts';
import { relativeLogitError } from './testing/logit-error.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const whole: Segment = { layers: [0, 1, 2], embed: true, head: 'final', hiddenOut: false };
const tied = randomLlama({ dim: 32, nHeads: 4, nKvHeads: 2, tiedEmbeddings: true, ropeLayout: 'interleaved' }, 3);
const untied = randomLlama({}, 4);

const text = (model: Uint8Array) => new TextDecoder('latin1').decode(model);
const externalBytes = (g: ReturnType<typeof buildSegment>) => g.built.externalData.reduce((n, d) => n + d.data.byteLength, 0);

describe('tied head read from the embedding table', () => {
  it('a tied fp32 head: one FusedMatMul on the embedding, no lm_head initializer, the same node count', () => {
    const w = prepareWeights(tied.config, tied.weights);
    const plain = buildSegment(w, whole, 'onnx');
    const fused = buildSegment(w, whole, 'onnx', 'runner', { headFromEmbedding: true });
    expect(text(fused.built.model)).toContain('FusedMatMul');
    expect(text(fused.built.model)).not.toContain('lm_head');
    expect(text(plain.built.model)).toContain('lm_head');
    expect(fused.nodeCount).toBe(plain.nodeCount);
    // The model bytes plus external data shrink by the head's dim x vocab floats (plus the
    // few bytes of its initializer's name and shape).
    const size = (g: typeof plain) => g.built.model.byteLength + externalBytes(g);
    const headBytes = tied.config.dim * tied.config.vocabSize * 4;
    expect(size(plain) - size(fused)).toBeGreaterThanOrEqual(headBytes);
    expect(size(plain) - size(fused)).toBeLessThan(headBytes + 64);
  });

  it('an untied head or a compressed (q8) head keeps its own MatMul', () => {
    const u = buildSegment(prepareWeights(untied.config, untied.weights), whole, 'onnx', 'runner', { headFromEmbedding: true });
    expect(text(u.built.model)).not.toContain('FusedMatMul');
    expect(text(u.built.model)).toContain('lm_head');
    const q8 = buildSegment(prepareWeights(tied.config, tied.weights, { weights: { linear: 'f32', head: 'q8' } }), whole, 'onnx', 'runner', { headFromEmbedding: true });
    expect(text(q8.built.model)).not.toContain('FusedMatMul');
  });

  it('a head-only segment (no Gather) still gets the table once', () => {
    const w = prepareWeights(tied.config, tied.weights);
    const late = buildSegment(w, { layers: [2], embed: false, head: 'final', hiddenOut: false }, 'onnx', 'runner', { headFromEmbedding: true });
    expect(text(late.built.model)).toContain('FusedMatMul');
    expect(text(late.built.model)).not.toContain('Gather');
  });

  it.each(['onnx', 'gqa', 'plain'] as AttentionKind[])('%s attention: runner logits equal the reference within 1e-4 (prefill, decode, exit head)', async (attention) => {
    const plan = { layers: [0, 1, 2], exit: 1 };
    const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(tied.config, tied.weights), plan, attention, { headFromEmbedding: true });
    const ref = new LlamaReference(tied.config, tied.weights, plan);
    const prompt = [1, 7, 22, 5];
    let want: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (want = ref.forward(t, p)));
    expect(relativeLogitError(await runner.step(prompt), want)).toBeLessThan(1e-4);
    for (const [i, t] of [9, 31, 2].entries()) expect(relativeLogitError(await runner.step([t]), ref.forward(t, prompt.length + i))).toBeLessThan(1e-4);
    // The exit segment's head reads the table too.
    runner.reset();
    let wantExit: Float32Array = new Float32Array(0);
    prompt.forEach((t, p) => (wantExit = ref.forward(t, p, { exit: true })));
    expect(relativeLogitError(await runner.step(prompt, { exit: true }), wantExit)).toBeLessThan(1e-4);
    await runner.release();
  });
});

