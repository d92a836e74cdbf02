import type { SparsitySetting } from '../compress/sparsity-select.ts';

/**
 * How RoPE frequencies are rescaled for contexts longer than the model was pre-trained on
 * (Hugging Face `rope_scaling`); see models/llama/rope.ts for the formulas.
 * - 'linear': every inverse frequency divided by `factor` (position interpolation).
 * - 'llama3': Llama 3.1+'s per-frequency rule: wavelengths shorter than
 *   `originalMaxPositionEmbeddings / highFreqFactor` are kept, longer than
 *   `originalMaxPositionEmbeddings / lowFreqFactor` are divided by `factor`, and the band between
 *   is blended smoothly.
 *
 * @example
 * const scaling: RopeScaling = { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 };
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

/**
 * The shape of a LLaMA-family model (LLaMA, Mistral, Qwen2), whatever file it came from.
 *
 * @example
 * const hs = headSizeOf(config); // config.headDim ?? config.dim / config.nHeads
 */
export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  ropeTheta: number;
  normEps: number;
  tiedEmbeddings: boolean;
  /**
   * How q/k head dims pair up for RoPE: 'interleaved' = (2i, 2i+1) as in Meta's and llama2.c's code;
   * 'half' = (i, i + headSize/2) as in Hugging Face's `rotate_half`.
   */
  ropeLayout: 'interleaved' | 'half';
  bosTokenId: number;
  eosTokenId: number;
  /**
   * Per-head size when the checkpoint states it (HF `head_dim`); absent means dim / nHeads.
   * Q/K/V widths are nHeads*headDim and nKvHeads*headDim, which need not equal dim.
   */
  headDim?: number;
  /** RoPE frequency rescaling (HF `rope_scaling`); absent = plain theta^(-2i/hs). */
  ropeScaling?: RopeScaling;
  /** Q, K and V projections carry biases (Qwen2); the output projection never does here. */
  qkvBias?: boolean;
  /**
   * Mistral-style sliding window: a query attends only to the last `slidingWindow` positions
   * (itself included). The graphs implement full causal attention, so they only accept models
   * whose window covers the whole context (`slidingWindow >= maxSeqLen`); absent = no window.
   */
  slidingWindow?: number;
}

/** Per-head size of Q, K and V: the explicit `headDim`, else dim / nHeads. */
export function headSizeOf(config: Pick<LlamaConfig, 'dim' | 'nHeads' | 'headDim'>): number {
  return config.headDim ?? config.dim / config.nHeads;
}

/** Row-major weights; linear layers are [out, in] like torch.nn.Linear and llama2.c. */
export interface LlamaLayerWeights {
  attnNorm: Float32Array; // [dim]
  wq: Float32Array; // [nHeads*headSize, dim]
  wk: Float32Array; // [nKvHeads*headSize, dim]
  wv: Float32Array; // [nKvHeads*headSize, dim]
  wo: Float32Array; // [dim, nHeads*headSize]
  ffnNorm: Float32Array; // [dim]
  w1: Float32Array; // gate [hidden, dim]
  w2: Float32Array; // down [dim, hidden]
  w3: Float32Array; // up   [hidden, dim]
  /** Present exactly when `config.qkvBias` (Qwen2). */
  bq?: Float32Array; // [nHeads*headSize]
  bk?: Float32Array; // [nKvHeads*headSize]
  bv?: Float32Array; // [nKvHeads*headSize]
}

export interface LlamaWeights {
  tokenEmbedding: Float32Array; // [vocab, dim]
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // [dim]
  lmHead: Float32Array; // [vocab, dim]; the same array as tokenEmbedding when tied
}

/**
 * What to run: `layers` are the kept blocks, in order (depth pruning); `exit`, when set, is how
 * many of those kept blocks run before drafts leave through the shared final norm + LM head
 * (LayerSkip early exit): exit after `layers.slice(0, exit)`.
 *
 * @example
 * const plan: LlamaPlan = { layers: [0, 1, 3, 4], exit: 2 }; // skip block 2; drafts exit after blocks 0,1
 */
export interface LlamaPlan {
  layers: number[];
  exit?: number;
  /** Structured width pruning: the KV heads and FFN channels each block keeps; absent = full width. */
  width?: WidthPlan;
}

/**
 * Kept units per model block (index = block, whether or not `layers` keeps it; length nLayers):
 * `kvHeads[l]` the KV heads block l keeps (whole GQA groups: the query heads reading a kept KV
 * head stay, the others go), `ffn[l]` its FFN channels (gate/up columns, down rows); ascending
 * indices into the full block. `bias`: FLAP's compensation, the removed inputs' mean contribution
 * on the calibration text added as an output bias after O and down (models/compress/width-slice.ts);
 * a plan only names it, the engine measures the means.
 *
 * @example
 * const width: WidthPlan = { kvHeads: [[0, 1, 2, 3], [0, 2, 3]], ffn: [[...Array(432).keys()], [0, 1, 5]], bias: true };
 */
export interface WidthPlan {
  kvHeads: number[][];
  ffn: number[][];
  bias?: boolean;
}

/**
 * Weight compression for a plan's graphs (models/compress/), given to `prepareWeights` beside the
 * plan (not yet a `LlamaPlan` field: core/text-types.ts mirrors that type): round-to-nearest, asymmetric per group for
 * 4 and 8 bits, symmetric per output channel for the int8 kernel.
 * - `linear`: the blocks' Q/K/V, O, gate|up and down weights.
 * - `group`: block size along the input features (MatMulNBits `block_size`; default 32).
 * - `kernel`: 'int8' = DynamicQuantizeMatMul, per-channel int8 weights (q4: the 4-bit grid's
 *   values requantized to int8, a quarter of fp32's memory at q8's speed); 'nbits' =
 *   MatMulNBits; 'dequantized' = the quantized grid dequantized once to fp32 MatMul (the quality
 *   of the bits at fp32 speed); 'auto' (default) = the fastest measured on the backend
 *   (models/compress/kernel-choice.ts).
 * - `head`: the LM head, 'f32' or 'q8' (never below 8 bits); default per backend. The embedding
 *   stays fp32.
 * - `accuracyLevel`: MatMulNBits `accuracy_level`, always written: 1 (default) = fp32
 *   activations, 4 = int8 activations (faster on GPUs with int8 dot products, less exact).
 * - `method`: how the block linears' grid values are chosen (never the head's, which is always
 *   round-to-nearest at 8 bits or more): 'rtn' (default) = round-to-nearest from each group's
 *   min/max; 'hqq' = the same grid refined per group by half-quadratic optimisation of a robust
 *   reconstruction error (models/compress/hqq.ts; no calibration data; 4/8-bit groups only, not
 *   the symmetric int8 per-channel kernel, which has no zero point to refine); 'awq' =
 *   activation-aware per-input-channel scaling searched on calibration text and folded into the
 *   preceding norm / V / up weights, then round-to-nearest (models/compress/awq.ts; needs the
 *   model's activations, so only `TextEngine.compress` applies it, not `prepareWeights`).
 *
 * @example
 * const lm = await w.text('stories-layerskip', { compress: { linear: 'q8' } satisfies WeightsSetting });
 * await other.compress({ linear: 'q4', group: 32 });
 */
export interface WeightsSetting {
  linear: 'f32' | 'q8' | 'q4';
  group?: 32 | 64 | 128;
  kernel?: 'auto' | 'int8' | 'nbits' | 'dequantized';
  head?: 'f32' | 'q8';
  accuracyLevel?: 1 | 4;
  method?: 'rtn' | 'hqq' | 'awq';
  /**
   * Sparsity of the block linears (models/compress/sparsity-select.ts): masked before they are
   * quantized, stored sparse in a variant (index + kept values), expanded to dense kernels at
   * compile. 'wanda' needs calibration: only `TextEngine.compress` / `lm.compress`.
   */
  sparsity?: SparsitySetting;
}

/** The plan that runs every block once, in order, with no early exit. */
export function fullPlan(config: LlamaConfig): LlamaPlan {
  return { layers: Array.from({ length: config.nLayers }, (_, i) => i) };
}
