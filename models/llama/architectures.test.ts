/**
 * LLaMA-family variants (Llama with rope_scaling llama3/linear, Mistral, Qwen2 with Q/K/V biases,
 * explicit head_dim, tied/untied, GQA) at small random sizes: an HF folder written here from
 * known weights goes through the HF importer and the graph preparation, runs as Whittle's ONNX
 * graphs in onnxruntime-web (every attention kind), and must give the logits of the independent
 * TypeScript reference (models/reference/llama-ref.ts) within 1e-4 of the logit range at prefill
 * and at every decode step. Each variant also checks that its feature really moves the logits, so
 * a graph that ignored it could not pass.
 */
import { describe, expect, it } from 'vitest';
import type * as ortTypes from 'onnxruntime-web';
import { readHfModel, type HfModelFiles } from '../import/hf/model.ts';
import { hfTensors, writeSafetensors, type TensorSpec } from '../import/hf/testing/folder.ts';
import { LlamaReference } from '../reference/llama-ref.ts';
import { createSession, loadOrt } from '../../workers/ort/runtime.ts';
import { PlanRunner } from '../../workers/text/runner.ts';
import { buildSegment, gqaSupported, type AttentionKind } from './graph.ts';
import { prepareWeights } from './prepare.ts';
import { randomLlama } from './testing/random-model.ts';
import { fullPlan, type LlamaConfig, type LlamaWeights } from './types.ts';
import { relativeLogitError } from './testing/logit-error.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

const bytes = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;

/** config.json as transformers writes it for `arch`, from the config the weights were drawn for. */
function hfConfigJson(arch: string, c: LlamaConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const rope = c.ropeScaling;
  return {
    architectures: [arch],
    model_type: { LlamaForCausalLM: 'llama', MistralForCausalLM: 'mistral', Qwen2ForCausalLM: 'qwen2' }[arch],
    hidden_size: c.dim, intermediate_size: c.hiddenDim, num_hidden_layers: c.nLayers, num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads, vocab_size: c.vocabSize, max_position_embeddings: c.maxSeqLen, rope_theta: c.ropeTheta,
    rms_norm_eps: c.normEps, tie_word_embeddings: c.tiedEmbeddings, bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId,
    hidden_act: 'silu', torch_dtype: 'float32',
    rope_scaling: rope === undefined ? null
      : rope.type === 'linear' ? { type: 'linear', factor: rope.factor }
      : { rope_type: 'llama3', factor: rope.factor, low_freq_factor: rope.lowFreqFactor, high_freq_factor: rope.highFreqFactor, original_max_position_embeddings: rope.originalMaxPositionEmbeddings },
    ...(c.headDim !== undefined ? { head_dim: c.headDim } : {}),
    ...extra,
  };
}

/** The HF folder of a model: tensors with HF names (plus Qwen2's q/k/v biases), config.json. */
function hfFolder(arch: string, c: LlamaConfig, w: LlamaWeights, extra: Record<string, unknown> = {}): HfModelFiles {
  const tensors: Record<string, TensorSpec> = hfTensors(c, w);
  w.layers.forEach((l, i) => {
    if (l.bq) tensors[`model.layers.${i}.self_attn.q_proj.bias`] = { shape: [l.bq.length], data: l.bq };
    if (l.bk) tensors[`model.layers.${i}.self_attn.k_proj.bias`] = { shape: [l.bk.length], data: l.bk };
    if (l.bv) tensors[`model.layers.${i}.self_attn.v_proj.bias`] = { shape: [l.bv.length], data: l.bv };
  });
  return { 'config.json': bytes(hfConfigJson(arch, c, extra)), 'model.safetensors': writeSafetensors(tensors) };
}

const PROMPT = [1, 17, 30, 4, 22, 9];
const FOLLOW = [5, 38, 0, 11];

/** Reference logits after the prompt, then after each following token. */
function referenceSteps(config: LlamaConfig, weights: LlamaWeights): Float32Array[] {
  const ref = new LlamaReference(config, weights);
  let last: Float32Array = new Float32Array(0);
  PROMPT.forEach((t, p) => (last = ref.forward(t, p)));
  const out = [last];
  FOLLOW.forEach((t, i) => out.push(ref.forward(t, PROMPT.length + i)));
  return out;
}

/** The same steps through a compiled plan: prefill in one run, then one token per run. */
async function graphSteps(config: LlamaConfig, weights: LlamaWeights, attention: AttentionKind): Promise<Float32Array[]> {
  const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(config, weights), fullPlan(config), attention);
  try {
    const out = [(await runner.step(PROMPT)).slice()];
    for (const t of FOLLOW) out.push((await runner.step([t])).slice());
    return out;
  } finally {
    await runner.release();
  }
}

interface Variant {
  name: string;
  arch: string;
  model: { config: LlamaConfig; weights: LlamaWeights };
  /** The same weights without the variant's feature: its logits must differ (the feature matters). */
  without: LlamaConfig | LlamaWeights;
  extra?: Record<string, unknown>;
}

const llama3Scaling = { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } as const;
const variants: Variant[] = [];
{
  // hs 16, theta 5e5: wavelengths 6.3, 33, 170, ...: with original 64 (bands at 16 and 64) pair 0 is
  // kept, pair 1 blended, pairs 2+ divided, so all three branches of the rule are exercised.
  const m = randomLlama({ dim: 64, nHeads: 4, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 48, ropeScaling: llama3Scaling }, 11);
  variants.push({ name: 'Llama, rope_scaling llama3, GQA 4/2, untied', arch: 'LlamaForCausalLM', model: m, without: { ...m.config, ropeScaling: undefined } });
}
{
  const m = randomLlama({ dim: 48, nHeads: 3, nKvHeads: 3, hiddenDim: 64, maxSeqLen: 48, ropeTheta: 10000, ropeScaling: { type: 'linear', factor: 2.5 }, tiedEmbeddings: true }, 12);
  variants.push({ name: 'Llama, rope_scaling linear 2.5, MHA, tied', arch: 'LlamaForCausalLM', model: m, without: { ...m.config, ropeScaling: undefined } });
}
{
  // Llama-3.2-1B's own RoPE settings and explicit head_dim (equal to hidden/heads), at a small size.
  const m = randomLlama({ dim: 64, nHeads: 8, nKvHeads: 2, hiddenDim: 96, maxSeqLen: 48, headDim: 8, ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 }, tiedEmbeddings: true }, 13);
  // Published values only touch frequencies too slow to show in 10 positions: compare against theta instead.
  variants.push({ name: 'Llama-3.2 style: head_dim given, llama3 factor 32, GQA 8/2, tied', arch: 'LlamaForCausalLM', model: m, without: { ...m.config, ropeTheta: 10000 } });
}
{
  // sliding_window longer than the context: plain causal attention, which the graphs run.
  const m = randomLlama({ dim: 64, nHeads: 4, nKvHeads: 1, hiddenDim: 96, maxSeqLen: 48, ropeTheta: 1e6, slidingWindow: 64 }, 14);
  variants.push({ name: 'Mistral, sliding_window 64 over a 48 context, GQA 4/1', arch: 'MistralForCausalLM', model: m, without: { ...m.config, ropeTheta: 10000 }, extra: { sliding_window: 64 } });
}
{
  const m = randomLlama({ dim: 96, nHeads: 6, nKvHeads: 2, hiddenDim: 128, maxSeqLen: 48, ropeTheta: 1e6, qkvBias: true, tiedEmbeddings: true }, 15);
  const noBias = { ...m.weights, layers: m.weights.layers.map(({ bq: _q, bk: _k, bv: _v, ...l }) => l) };
  variants.push({
    name: 'Qwen2: q/k/v biases, theta 1e6, GQA 6/2, tied',
    arch: 'Qwen2ForCausalLM',
    model: m,
    without: noBias,
    extra: { use_sliding_window: false, sliding_window: 32768, max_window_layers: 3 },
  });
}

describe.each(variants)('$name', (v) => {
  const folder = hfFolder(v.arch, v.model.config, v.model.weights, v.extra);
  const imported = readHfModel(folder);
  const want = referenceSteps(v.model.config, v.model.weights);

  it('imports to the config and weights it was written from', () => {
    expect(imported.config).toEqual(v.model.config);
    expect(imported.weights.layers[1]!.bq).toEqual(v.model.weights.layers[1]!.bq);
  });

  it('its feature moves the logits (a graph that ignored it would fail)', () => {
    const without = 'dim' in v.without ? referenceSteps(v.without, v.model.weights) : referenceSteps(v.model.config, v.without);
    expect(relativeLogitError(without.at(-1)!, want.at(-1)!)).toBeGreaterThan(1e-3);
  });

  const kinds: AttentionKind[] = gqaSupported(v.model.config.headDim ?? v.model.config.dim / v.model.config.nHeads) ? ['onnx', 'gqa', 'plain'] : ['onnx', 'plain'];
  it.each(kinds)('%s attention: graph logits equal the reference within 1e-4, prefill and every decode step', async (attention) => {
    const got = await graphSteps(imported.config, imported.weights, attention);
    got.forEach((g, i) => expect(relativeLogitError(g, want[i]!)).toBeLessThan(1e-4));
  });
});

/** Prefill through one whole-model graph built directly ('onnx' attention), bypassing the runner. */
async function prefillLogits(config: LlamaConfig, weights: LlamaWeights, tokens: number[]): Promise<Float32Array> {
  const prepared = prepareWeights(config, weights);
  const graph = buildSegment(prepared, { layers: fullPlan(config).layers, embed: true, head: 'final', hiddenOut: false }, 'onnx');
  const session = await createSession(ort, graph.built, 'wasm');
  const S = tokens.length;
  const hs = prepared.headSize;
  const mask = new Float32Array(S * S); // [S, T = S]: query s sees keys 0..s
  for (let s = 0; s < S; s++) mask.fill(-3e38, s * S + s + 1, (s + 1) * S);
  const feeds: Record<string, ortTypes.Tensor> = {
    input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, S]),
    position: new ort.Tensor('int64', BigInt64Array.of(0n), [1]),
    attention_mask: new ort.Tensor('float32', mask, [S, S]),
  };
  for (let l = 0; l < config.nLayers; l++) {
    feeds[`past_key.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, config.nKvHeads, 0, hs]);
    feeds[`past_value.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, config.nKvHeads, 0, hs]);
  }
  const out = await session.run(feeds);
  await session.release();
  return out.logits!.data as Float32Array;
}

describe('explicit head_dim different from hidden_size / heads', () => {
  // Q/K/V are 4 heads of 12 (48 wide) over a 32-wide residual stream, as in Mistral-Nemo's 5120 / 32 x 128.
  const m = randomLlama({ dim: 32, nHeads: 4, nKvHeads: 2, headDim: 12, hiddenDim: 48, maxSeqLen: 32, qkvBias: true }, 16);

  it('the graph gives the reference logits (the graphs take any head size)', async () => {
    const ref = new LlamaReference(m.config, m.weights);
    let want: Float32Array = new Float32Array(0);
    PROMPT.forEach((t, p) => (want = ref.forward(t, p)));
    expect(relativeLogitError(await prefillLogits(m.config, m.weights, PROMPT), want)).toBeLessThan(1e-4);
  });

  it('the importer takes it, and the runner (KV caches sized by head_dim) decodes like the reference', async () => {
    const imported = readHfModel(hfFolder('Qwen2ForCausalLM', m.config, m.weights));
    expect(imported.config.headDim).toBe(12);
    const want = referenceSteps(m.config, m.weights);
    for (const attention of ['onnx', 'plain'] as const) {
      const got = await graphSteps(imported.config, imported.weights, attention);
      got.forEach((g, i) => expect(relativeLogitError(g, want[i]!)).toBeLessThan(1e-4));
    }
  });
});

describe('what the graphs do not implement is refused, never run wrong', () => {
  const m = randomLlama({ maxSeqLen: 32 }, 17);
  const withConfig = (arch: string, extra: Record<string, unknown>, options = {}) => () => readHfModel(hfFolder(arch, m.config, m.weights, extra), options);
  const unsupported = expect.objectContaining({ code: 'UNSUPPORTED' });

  it('Mistral with a sliding window shorter than the context: UNSUPPORTED, and fine with a context within the window', () => {
    expect(withConfig('MistralForCausalLM', { sliding_window: 16 })).toThrow(unsupported);
    // MistralConfig's default window (4096) covers this context; null means no window.
    expect(withConfig('MistralForCausalLM', {})().config.slidingWindow).toBe(4096);
    expect(withConfig('MistralForCausalLM', { sliding_window: null })().config.slidingWindow).toBeUndefined();
    expect(withConfig('MistralForCausalLM', { sliding_window: 16 }, { maxContext: 16 })().config).toMatchObject({ slidingWindow: 16, maxSeqLen: 16 });
  });

  it('Qwen2 with use_sliding_window over the context: UNSUPPORTED', () => {
    expect(withConfig('Qwen2ForCausalLM', { use_sliding_window: true, sliding_window: 16, max_window_layers: 1 })).toThrow(unsupported);
  });

  it('the graph builder refuses a sliding window shorter than the context, whatever built the config', () => {
    expect(() => prepareWeights({ ...m.config, slidingWindow: 8 }, m.weights)).toThrow(unsupported);
  });

  it.each([
    ['an unknown architecture', 'GPT2LMHeadModel', {}],
    ['rope_scaling yarn', 'Qwen2ForCausalLM', { rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 32768 } }],
    ['rope_scaling dynamic', 'LlamaForCausalLM', { rope_scaling: { type: 'dynamic', factor: 2 } }],
    ['attention_bias on Llama (o_proj bias too)', 'LlamaForCausalLM', { attention_bias: true }],
    ['mlp_bias', 'LlamaForCausalLM', { mlp_bias: true }],
    ['partial rotary embeddings', 'LlamaForCausalLM', { partial_rotary_factor: 0.5 }],
    ['multimodal RoPE', 'Qwen2ForCausalLM', { use_mrope: true }],
    ['a non-SiLU activation', 'MistralForCausalLM', { hidden_act: 'gelu' }],
  ])('%s: UNSUPPORTED', (_what, arch, extra) => {
    expect(withConfig(arch, extra)).toThrow(unsupported);
  });

  it('biases the config does not declare are BAD_MODEL, not silently dropped', () => {
    const q = randomLlama({ qkvBias: true }, 18);
    expect(() => prepareWeights({ ...q.config, qkvBias: false }, q.weights)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
});
