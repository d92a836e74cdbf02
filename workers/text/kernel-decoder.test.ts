import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { heldLayerwise, prepareWeights, type PreparedLayer, type PreparedWeights } from '../../models/llama/prepare.ts';
import { sliceWidth } from '../../models/compress/width-slice.ts';
import { compressPrepared } from '../../models/compress/compress-prepared.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import { relativeLogitError } from '../../models/llama/testing/logit-error.ts';
import type { LinearWeight } from '../../models/compress/linear.ts';
import type { LlamaConfig, LlamaPlan, LlamaWeights, WeightsSetting } from '../../models/llama/types.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner, type DecodeKernelChoice } from './runner.ts';
import { kernelBytesPerWeight } from './kernel-decoder.ts';
import { SPLIT_MIN_WEIGHTS } from '../kernels/kernel-threads.ts';
import { isBf16Exact } from '../kernels/kernel-pack.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

/** An int8 linear's exact fp32 values (b * scale per column): the weight-only model the kernels approximate. */
function dequantized(w: LinearWeight): LinearWeight {
  if (w instanceof Float32Array || w.kind !== 'int8') return w;
  const { b, scales, K, N } = w.weight;
  const out = new Float32Array(K * N);
  for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) out[k * N + n] = b[k * N + n]! * scales[n]!;
  return out;
}

function dequantizedWeights(p: PreparedWeights): PreparedWeights {
  const layer = (l: PreparedLayer): PreparedLayer => ({
    ...l,
    qkv: dequantized(l.qkv),
    wo: dequantized(l.wo),
    gateUp: dequantized(l.gateUp),
    down: dequantized(l.down),
  });
  return { ...p, layers: p.layers.map(layer), head: dequantized(p.head) };
}


const argmax = (x: Float32Array) => x.reduce((best, v, i) => (v > x[best]! ? i : best), 0);

async function runner(prepared: PreparedWeights, plan: LlamaPlan, decodeKernel: DecodeKernelChoice): Promise<PlanRunner> {
  return PlanRunner.compile(ort, 'wasm', prepared, plan, 'onnx', undefined, { decodeKernel });
}

/**
 * Prefill `prompt`, then decode `steps` tokens greedily on the kernels, and feed the same tokens
 * to the fp32 graphs over the dequantized weights (onnxruntime's MatMul: an independent
 * implementation of the weight-only int8 model) and to the int8 graphs (DynamicQuantizeMatMul).
 * Returns the worst relative logit error of each against the fp32 reference.
 */
async function decodeAgainstReference(
  config: LlamaConfig,
  weights: LlamaWeights,
  setting: WeightsSetting,
  plan: LlamaPlan,
  prompt: number[],
  steps: number,
) {
  const prepared = prepareWeights(config, weights, { weights: setting });
  const kernel = await runner(prepared, plan, 'kernel');
  const graphs = await runner(prepared, plan, 'onnxruntime');
  const reference = await runner(dequantizedWeights(prepared), plan, 'onnxruntime');
  expect(kernel.decodePath).toBe('kernel');
  expect(graphs.decodePath).toBe('onnxruntime');
  let kernelError = 0;
  let graphError = 0;
  let agree = 0;
  let logits = await kernel.step(prompt);
  await graphs.step(prompt);
  await reference.step(prompt);
  for (let i = 0; i < steps; i++) {
    const token = argmax(logits);
    logits = await kernel.step([token]);
    const want = await reference.step([token]);
    const int8Graphs = await graphs.step([token]);
    kernelError = Math.max(kernelError, relativeLogitError(logits, want));
    graphError = Math.max(graphError, relativeLogitError(int8Graphs, want));
    if (argmax(logits) === argmax(want)) agree++;
  }
  await Promise.all([kernel.release(), graphs.release(), reference.release()]);
  return { kernelError, graphError, agree };
}

const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));

describe("KernelDecoder (int8 decode steps on Whittle's kernels)", () => {
  it('stories260K q8: every step within 1% of the weight-only fp32 logits, closer than the int8 graphs, the same greedy tokens', async () => {
    const { kernelError, graphError, agree } = await decodeAgainstReference(
      stories.config,
      stories.weights,
      { linear: 'q8', head: 'q8' },
      { layers: [0, 1, 2, 3, 4] },
      [1, 403, 407, 261, 378],
      24,
    );
    expect(kernelError).toBeLessThan(0.01);
    // 11-bit activations against DynamicQuantizeMatMul's 8: the kernels should be the closer of the two.
    expect(kernelError).toBeLessThan(graphError);
    expect(agree).toBe(24);
  });

  it('a random GQA model with Qwen-style q/k/v biases, untied fp32 head, widths not multiples of 16, a pruned plan', async () => {
    const m = randomLlama({ dim: 48, hiddenDim: 52, nLayers: 4, nHeads: 4, nKvHeads: 2, vocabSize: 37, qkvBias: true }, 3);
    const { kernelError, agree } = await decodeAgainstReference(
      m.config,
      m.weights,
      { linear: 'q8' },
      { layers: [0, 2, 3] },
      [1, 5, 9, 33],
      12,
    );
    expect(kernelError).toBeLessThan(0.01);
    expect(agree).toBeGreaterThanOrEqual(11);
  });
});

describe('KernelDecoder inside PlanRunner: the graphs and the kernels share one KV history', () => {
  const prepared = prepareWeights(stories.config, stories.weights, { weights: { linear: 'q8', head: 'q8' } });
  const plan = { layers: [0, 1, 2, 3, 4], exit: 2 };

  /**
   * A sequence mixing both paths on one runner: chunked prefill (graphs), kernel steps, drafts
   * through the exit (graphs, early layers only), verification of the later layers (graphs), a
   * truncation of rejected drafts, then kernel steps again; returns every step's logits.
   */
  async function mixed(r: PlanRunner): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    r.prefillChunk = 3;
    out.push(await r.step([1, 403, 407, 261, 378, 300, 301]));
    out.push(await r.step([432]), await r.step([383]));
    const start = r.position;
    const d1 = await r.draftStep(286);
    const d2 = await r.draftStep(261);
    const hidden = new Float32Array([...d1.hidden, ...d2.hidden]);
    out.push(await r.verify(hidden, 2));
    await r.truncate(start + 1); // the second draft rejected
    out.push(await r.step([290]), await r.step([291]), await r.step([292]));
    return out;
  }

  it('mixed graph and kernel steps (chunked prefill, drafts, verification, truncation) match the weight-only fp32 graphs doing the same', async () => {
    const kernel = await runner(prepared, plan, 'kernel');
    const reference = await runner(dequantizedWeights(prepared), plan, 'onnxruntime');
    const got = await mixed(kernel);
    const want = await mixed(reference);
    // The five one-token full-path steps ran on the kernels (the mirror stayed in step with the host caches).
    expect(kernel.kernelSteps).toBe(5);
    expect(reference.kernelSteps).toBe(0);
    expect(got).toHaveLength(want.length);
    // Graph runs on the shared cache are exact up to DynamicQuantizeMatMul; kernel steps within 1%.
    for (let i = 0; i < want.length; i++) expect(relativeLogitError(got[i]!, want[i]!), `step ${i}`).toBeLessThan(0.02);
    expect(kernel.position).toBe(reference.position);
    await Promise.all([kernel.release(), reference.release()]);
  });

  it('reset starts a new sequence on the kernels: the same prompt gives the same logits again', async () => {
    const r = await runner(prepared, { layers: [0, 1, 2, 3, 4] }, 'kernel');
    const run = async () => {
      await r.step([1, 403, 407]);
      return [await r.step([261]), await r.step([378])];
    };
    const first = await run();
    r.reset();
    const second = await run();
    expect(second).toEqual(first);
    await r.release();
  });

  it('an aborted kernel step throws ABORTED and leaves every cache where it was', async () => {
    const r = await runner(prepared, { layers: [0, 1, 2, 3, 4] }, 'kernel');
    await r.step([1, 403, 407]);
    const controller = new AbortController();
    controller.abort();
    await expect(r.step([261], { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(r.position).toBe(3);
    const after = await r.step([261]);
    const fresh = await runner(prepared, { layers: [0, 1, 2, 3, 4] }, 'kernel');
    await fresh.step([1, 403, 407]);
    expect(after).toEqual(await fresh.step([261]));
    await Promise.all([r.release(), fresh.release()]);
  });

  it("fp32 weights that are not bf16 stay on the graphs under 'auto'; q8 takes the kernels", async () => {
    const fp32 = prepareWeights(stories.config, stories.weights);
    const r = await runner(fp32, { layers: [0, 1, 2, 3, 4] }, 'auto');
    expect(r.decodePath).toBe('onnxruntime');
    expect(r.kernelBytes).toBe(0);
    await r.step([1, 403]);
    await r.step([407]);
    expect(r.kernelSteps).toBe(0);
    await r.release();
    const q8 = await runner(prepared, { layers: [0, 1, 2, 3, 4] }, 'auto');
    expect(q8.decodePath).toBe('kernel');
    expect(q8.kernelBytes).toBeGreaterThan(0);
    expect(q8.kernelSteps).toBe(0); // the compile's warm-up is not counted
    await q8.step([1, 403]);
    await q8.step([407]);
    await q8.step([407], { graphs: true });
    expect(q8.kernelSteps).toBe(1);
    await q8.release();
  });
});

/** The prepared weights with every fp32 linear cut to bf16 values (low 16 bits cleared), as a bf16 checkpoint widens to. */
function bf16Values(p: PreparedWeights): PreparedWeights {
  const cut = (w: LinearWeight): LinearWeight => {
    if (!(w instanceof Float32Array)) return w;
    const out = w.slice();
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
    return out;
  };
  const layer = (l: PreparedLayer): PreparedLayer => ({ ...l, qkv: cut(l.qkv), wo: cut(l.wo), gateUp: cut(l.gateUp), down: cut(l.down) });
  return { ...p, layers: p.layers.map(layer), head: cut(p.head) };
}

describe('KernelDecoder on fp32 plans (bf16 checkpoints kept as bf16, other fp32 weights as fp32)', () => {
  const plan = { layers: [0, 1, 2, 3, 4] };
  const prompt = [1, 403, 407, 261, 378];

  /** Greedy steps on the kernels against onnxruntime's fp32 graphs over the same weights: worst relative logit error, argmax agreement. */
  async function againstGraphs(prepared: PreparedWeights, decodeKernel: DecodeKernelChoice, steps: number) {
    const kernel = await runner(prepared, plan, decodeKernel);
    const graphs = await runner(prepared, plan, 'onnxruntime');
    expect(kernel.decodePath).toBe('kernel');
    let logits = await kernel.step(prompt);
    await graphs.step(prompt);
    let error = 0;
    let agree = 0;
    for (let i = 0; i < steps; i++) {
      const token = argmax(logits);
      logits = await kernel.step([token]);
      const want = await graphs.step([token]);
      error = Math.max(error, relativeLogitError(logits, want));
      if (argmax(logits) === argmax(want)) agree++;
    }
    const bytes = kernel.kernelBytes;
    expect(kernel.kernelSteps).toBe(steps);
    await Promise.all([kernel.release(), graphs.release()]);
    return { error, agree, bytes };
  }

  it("bf16 values take the kernels under 'auto', in about half the memory of fp32 ones under 'kernel'; both match onnxruntime's fp32 MatMul within 1e-4", async () => {
    const fp32 = prepareWeights(stories.config, stories.weights);
    const bf16 = await againstGraphs(bf16Values(fp32), 'auto', 16);
    const full = await againstGraphs(fp32, 'kernel', 16);
    // The same products in another summation order: float rounding only.
    expect(bf16.error).toBeLessThan(1e-4);
    expect(full.error).toBeLessThan(1e-4);
    expect(bf16.agree).toBe(16);
    expect(full.agree).toBe(16);
    // The kernels' memory (whole 64 KiB pages: weights, caches, scratch; the weights most of it): 1.38 MB fp32, 0.85 MB bf16.
    expect(bf16.bytes).toBeLessThan(full.bytes * 0.7);
  });

  it("a bf16 checkpoint whose 1/sqrt(head size) is no power of two (stories260K: 8) keeps q|k|v in fp32, the rest in bf16, and takes the kernels under 'auto'", async () => {
    // Every fp32 array of the checkpoint cut to bf16 values, as a BF16 safetensors folder loads.
    const cut = (a: Float32Array) => {
      const out = a.slice();
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < bits.length; i++) bits[i] = bits[i]! & 0xffff0000;
      return out;
    };
    const w = stories.weights;
    const layers = w.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v instanceof Float32Array ? cut(v) : v])) as typeof l);
    const embedding = cut(w.tokenEmbedding);
    const bf16Checkpoint = { tokenEmbedding: embedding, layers, finalNorm: cut(w.finalNorm), lmHead: w.lmHead === w.tokenEmbedding ? embedding : cut(w.lmHead) };
    const prepared = prepareWeights(stories.config, bf16Checkpoint);
    const perWeight = kernelBytesPerWeight(prepared.layers[0]!);
    expect(isBf16Exact(prepared.layers[0]!.qkv as Float32Array)).toBe(false);
    expect(perWeight).toBeGreaterThan(2);
    expect(perWeight).toBeLessThan(3);
    const r = await againstGraphs(prepared, 'auto', 12);
    expect(r.error).toBeLessThan(1e-4);
    expect(r.agree).toBe(12);
  });
});

describe('KernelDecoder on the shapes compile makes', () => {
  it("width-pruned blocks with FLAP bias compensation, a tied fp32 head and a split plan (one session per block): the weight-only fp32 graphs' logits within 1%", async () => {
    const m = randomLlama({ dim: 48, hiddenDim: 64, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 50, tiedEmbeddings: true }, 11);
    const fp32 = prepareWeights(m.config, m.weights);
    // Block 1 keeps one KV group (2 of 4 query heads) and 40 of 64 FFN channels, with bias compensation.
    const width = {
      kvHeads: [[0, 1], [1], [0, 1]],
      ffn: [
        Array.from({ length: 64 }, (_, i) => i),
        Array.from({ length: 40 }, (_, i) => i * 1 + (i >= 20 ? 24 : 0)),
        Array.from({ length: 64 }, (_, i) => i),
      ],
      bias: true,
    };
    const means = {
      wo: Float32Array.from({ length: 4 * 12 }, (_, i) => Math.sin(i) * 0.1),
      down: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i) * 0.1),
    };
    const narrowed = sliceWidth(fp32, width, (l) => (l === 1 ? means : undefined), [1]);
    expect(narrowed.layers[1]!.kvHeads).toBe(1);
    expect(narrowed.layers[1]!.woBias).toBeDefined();
    const q8 = compressPrepared(narrowed, { linear: 'q8', head: 'f32' }, 'wasm');
    const plan = { layers: [0, 1, 2] };
    // segmentBytes 1: one session per block (split, RoPE rows fed). Host token lookup on the kernels: segment-split.test.ts.
    const limits = { segmentBytes: 1 };
    const kernel = await PlanRunner.compile(ort, 'wasm', heldLayerwise(q8), plan, 'onnx', undefined, { ...limits, decodeKernel: 'kernel' });
    const reference = await PlanRunner.compile(ort, 'wasm', heldLayerwise(dequantizedWeights(q8)), plan, 'onnx', undefined, {
      ...limits,
      decodeKernel: 'onnxruntime',
    });
    expect(kernel.decodePath).toBe('kernel');
    expect(kernel.runsPerStep).toBe(3);
    await kernel.step([1, 5, 9]);
    await reference.step([1, 5, 9]);
    for (const t of [33, 7, 21, 2]) expect(relativeLogitError(await kernel.step([t]), await reference.step([t]))).toBeLessThan(0.01);
    expect(kernel.kernelSteps).toBe(4);
    await Promise.all([kernel.release(), reference.release()]);
  });
});

describe('KernelDecoder with a helper thread (KernelThreads over a shared memory)', () => {
  // Every matrix above SPLIT_MIN_WEIGHTS, so each product is split (stories260K's are too small to be).
  const m = randomLlama({ dim: 256, hiddenDim: 640, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 300, maxSeqLen: 64 }, 5);
  expect(256 * 640 * 2).toBeGreaterThan(SPLIT_MIN_WEIGHTS);

  it.each([
    ['int8', () => prepareWeights(m.config, m.weights, { weights: { linear: 'q8', head: 'q8' } })],
    ['bf16', () => bf16Values(prepareWeights(m.config, m.weights))],
    ['fp32', () => prepareWeights(m.config, m.weights)],
  ] as const)("%s: gives bit-identical logits to one thread (each output row is one thread's), and the runner reports 2 threads", async (_, prepare) => {
    const prepared = prepare();
    const plan = { layers: [0, 1] };
    const one = await runner(prepared, plan, 'kernel');
    // onnxruntime's threads decide whether the kernels get a helper: ask for two for this compile only.
    const saved = ort.env.wasm.numThreads;
    ort.env.wasm.numThreads = 2;
    let two: PlanRunner;
    try {
      two = await runner(prepared, plan, 'kernel');
    } finally {
      ort.env.wasm.numThreads = saved;
    }
    expect(one.kernelThreads).toBe(1);
    expect(two.kernelThreads).toBe(2);
    await one.step([1, 40, 47]);
    await two.step([1, 40, 47]);
    // The helper stays off for a moment after a graph run (onnxruntime's threads spin then): wait it out.
    await new Promise((r) => setTimeout(r, 400));
    for (const t of [261, 78, 132, 83, 286]) expect(await two.step([t])).toEqual(await one.step([t]));
    expect(two.kernelSteps).toBe(5);
    await Promise.all([one.release(), two.release()]);
    expect(two.kernelThreads).toBe(0);
  });
});
