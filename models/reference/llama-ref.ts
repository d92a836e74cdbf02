/**
 * An independent LLaMA-family forward pass in plain loops: llama2.c's `run.c` transcribed to
 * TypeScript, one token at a time, with a KV cache per kept layer, extended to what Hugging Face
 * runs as LlamaForCausalLM (rope_scaling 'linear' / 'llama3', explicit head_dim),
 * MistralForCausalLM (sliding window) and Qwen2ForCausalLM (Q/K/V biases). It is the test
 * oracle for the ONNX graphs, so it shares no code with them (its RoPE frequencies are written
 * here from the published formulas, not taken from models/llama/rope.ts) and favours "obviously
 * right" over fast: float64 accumulation, no fusion, no weight permutation (it applies RoPE in
 * whichever layout the config says instead of converting the weights), biases added where the
 * model adds them, and the sliding window applied as a window rather than rejected.
 *
 * @example
 * const ref = new LlamaReference(config, weights, { layers: [0, 1, 3], exit: 2 });
 * const logits = ref.forward(1, 0);              // final norm + head after blocks 0,1,3
 * const draft = ref.forward(1, 0, { exit: true }); // (a fresh reference) ... after blocks 0,1
 */
import type { LlamaConfig, LlamaLayerWeights, LlamaPlan, LlamaWeights, RopeScaling } from '../llama/types.ts';

/** out[i] = weight[i] * x[i] / sqrt(mean(x^2) + eps) */
export function rmsnorm(x: Float32Array, weight: Float32Array, eps: number): Float32Array {
  let ss = 0;
  for (let i = 0; i < x.length; i++) ss += x[i]! * x[i]!;
  const scale = 1 / Math.sqrt(ss / x.length + eps);
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = weight[i]! * (x[i]! * scale);
  return out;
}

/** out = W x for a row-major W of shape [rows, x.length]. */
export function matvec(w: Float32Array, x: Float32Array, rows: number): Float32Array {
  const n = x.length;
  if (w.length !== rows * n) throw new Error(`matvec: weight has ${w.length} values, expected ${rows}x${n}`);
  const out = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = 0;
    const base = r * n;
    for (let k = 0; k < n; k++) acc += w[base + k]! * x[k]!;
    out[r] = acc;
  }
  return out;
}

export function softmaxInPlace(x: Float64Array | Float32Array, length = x.length): void {
  let max = -Infinity;
  for (let i = 0; i < length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < length; i++) {
    x[i] = Math.exp(x[i]! - max);
    sum += x[i]!;
  }
  for (let i = 0; i < length; i++) x[i] = x[i]! / sum;
}

/**
 * The rotation frequency of pair i (of headSize / 2) in radians per position.
 * Unscaled: theta^(-2i/headSize). 'linear' divides it by `factor` (transformers'
 * `_compute_linear_scaling_rope_parameters`). 'llama3' is Meta's `apply_scaling` from the Llama 3.1
 * release (transformers' `_compute_llama3_parameters` is the same rule): keep frequencies whose
 * wavelength is under original/high_freq_factor, divide those over original/low_freq_factor by
 * `factor`, and interpolate linearly in original/wavelength between the two.
 */
export function ropeFrequency(i: number, headSize: number, theta: number, scaling?: RopeScaling): number {
  const freq = 1 / Math.pow(theta, (2 * i) / headSize);
  if (scaling === undefined) return freq;
  if (scaling.type === 'linear') return freq / scaling.factor;
  const wavelen = (2 * Math.PI) / freq;
  const old = scaling.originalMaxPositionEmbeddings;
  if (wavelen < old / scaling.highFreqFactor) return freq;
  if (wavelen > old / scaling.lowFreqFactor) return freq / scaling.factor;
  const smooth = (old / wavelen - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
  return (1 - smooth) * (freq / scaling.factor) + smooth * freq;
}

/**
 * Rotates each head of `vec` (nHeads heads of headSize) for position `pos`, in place.
 * 'interleaved' pairs dims (2i, 2i+1) (llama2.c); 'half' pairs (i, i + headSize/2) (HF rotate_half).
 * Pair i turns by pos * ropeFrequency(i, ...).
 */
export function rope(vec: Float32Array, nHeads: number, headSize: number, pos: number, theta: number, layout: 'interleaved' | 'half', scaling?: RopeScaling): void {
  const half = headSize / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      const angle = pos * ropeFrequency(i, headSize, theta, scaling);
      const c = Math.cos(angle);
      const s = Math.sin(angle);
      const a = layout === 'interleaved' ? h * headSize + 2 * i : h * headSize + i;
      const b = layout === 'interleaved' ? a + 1 : a + half;
      const x0 = vec[a]!;
      const x1 = vec[b]!;
      vec[a] = x0 * c - x1 * s;
      vec[b] = x0 * s + x1 * c;
    }
  }
}

/** vec += bias, when the model has one. */
function addBias(vec: Float32Array, bias: Float32Array | undefined): void {
  if (bias) for (let i = 0; i < vec.length; i++) vec[i] = vec[i]! + bias[i]!;
}

/**
 * A block as the reference runs it: the checkpoint's arrays, or a width-pruned block's narrower
 * ones (fewer Q/K/V rows, O columns, FFN channels; the head and channel counts are read off the
 * array lengths) with FLAP's output biases after O and down. The caches keep the config's KV
 * width per position, so a narrower block uses a prefix of each row.
 */
export type ReferenceLayerWeights = LlamaLayerWeights & { woBias?: Float32Array; downBias?: Float32Array };

export interface ForwardOptions {
  /** Leave through the final norm + head after `plan.exit` kept blocks instead of after all of them. */
  exit?: boolean;
  /**
   * Cached positions this query does not attend to (their keys and values stay cached and in
   * place; positions are unchanged): dropout decoding's masked context tokens.
   */
  exclude?: ReadonlySet<number>;
}

export class LlamaReference {
  readonly plan: LlamaPlan;
  private readonly headSize: number;
  private readonly kvDim: number;
  // Per kept layer (index into plan.layers): [capacity, kvDim], grown as positions arrive (a
  // 131072-position context must not cost its whole cache up front).
  private keyCache: Float32Array[];
  private valueCache: Float32Array[];
  private capacity = 0;

  constructor(
    readonly config: LlamaConfig,
    readonly weights: LlamaWeights,
    plan?: LlamaPlan,
  ) {
    this.plan = plan ?? { layers: Array.from({ length: config.nLayers }, (_, i) => i) };
    this.headSize = config.headDim ?? config.dim / config.nHeads;
    this.kvDim = config.nKvHeads * this.headSize;
    this.keyCache = this.plan.layers.map(() => new Float32Array(0));
    this.valueCache = this.plan.layers.map(() => new Float32Array(0));
  }

  private reserve(positions: number): void {
    if (positions <= this.capacity) return;
    const cap = Math.min(Math.max(positions, 2 * this.capacity, 16), Math.max(positions, this.config.maxSeqLen));
    const grow = (old: Float32Array) => {
      const next = new Float32Array(cap * this.kvDim);
      next.set(old);
      return next;
    };
    this.keyCache = this.keyCache.map(grow);
    this.valueCache = this.valueCache.map(grow);
    this.capacity = cap;
  }

  /**
   * Logits [vocab] for `token` at position `pos`; positions must be fed in order 0, 1, 2...
   * (the KV cache of position p is written when p is fed). With `exit`, only the first
   * `plan.exit` kept blocks run, so only their caches are written.
   */
  forward(token: number, pos: number, options: ForwardOptions = {}): Float32Array {
    const { config: c, weights: w } = this;
    const hs = this.headSize;
    const groups = c.nHeads / c.nKvHeads; // the same in a width-pruned block (whole KV groups go)
    // Mistral: query `pos` sees keys pos - window + 1 .. pos (HF's sliding-window mask); others see 0 .. pos.
    const first = c.slidingWindow === undefined ? 0 : Math.max(0, pos - c.slidingWindow + 1);
    this.reserve(pos + 1);
    const x = w.tokenEmbedding.slice(token * c.dim, (token + 1) * c.dim);
    const depth = options.exit ? (this.plan.exit ?? this.plan.layers.length) : this.plan.layers.length;

    for (let slot = 0; slot < depth; slot++) {
      const lw: ReferenceLayerWeights = w.layers[this.plan.layers[slot]!]!;
      // A width-pruned block has fewer heads / FFN channels than the config: read them off its arrays.
      const nHeads = lw.wq.length / (hs * c.dim);
      const nKvHeads = lw.wk.length / (hs * c.dim);
      const hidden = lw.w1.length / c.dim;
      const kvDim = nKvHeads * hs;
      // Attention
      const xb = rmsnorm(x, lw.attnNorm, c.normEps);
      const q = matvec(lw.wq, xb, nHeads * hs);
      const k = matvec(lw.wk, xb, kvDim);
      const v = matvec(lw.wv, xb, kvDim);
      addBias(q, lw.bq);
      addBias(k, lw.bk);
      addBias(v, lw.bv);
      rope(q, nHeads, hs, pos, c.ropeTheta, c.ropeLayout, c.ropeScaling);
      rope(k, nKvHeads, hs, pos, c.ropeTheta, c.ropeLayout, c.ropeScaling);
      const kc = this.keyCache[slot]!;
      const vc = this.valueCache[slot]!;
      kc.set(k, pos * kvDim);
      vc.set(v, pos * kvDim);

      const att = new Float64Array(pos + 1 - first);
      const out = new Float32Array(nHeads * hs);
      for (let h = 0; h < nHeads; h++) {
        const kvh = Math.floor(h / groups); // query head h reads KV head h / (nHeads / nKvHeads)
        for (let t = first; t <= pos; t++) {
          if (options.exclude?.has(t)) {
            att[t - first] = -Infinity; // exp(-inf) = 0: no weight, and softmaxInPlace's max stays finite (pos itself is never excluded)
            continue;
          }
          let score = 0;
          for (let i = 0; i < hs; i++) score += q[h * hs + i]! * kc[t * kvDim + kvh * hs + i]!;
          att[t - first] = score / Math.sqrt(hs);
        }
        softmaxInPlace(att);
        for (let i = 0; i < hs; i++) {
          let acc = 0;
          for (let t = first; t <= pos; t++) acc += att[t - first]! * vc[t * kvDim + kvh * hs + i]!;
          out[h * hs + i] = acc;
        }
      }
      const attnOut = matvec(lw.wo, out, c.dim);
      addBias(attnOut, lw.woBias);
      for (let i = 0; i < c.dim; i++) x[i] = x[i]! + attnOut[i]!;

      // SwiGLU MLP: w2( silu(w1 x) * w3 x )
      const xf = rmsnorm(x, lw.ffnNorm, c.normEps);
      const gate = matvec(lw.w1, xf, hidden);
      const up = matvec(lw.w3, xf, hidden);
      for (let i = 0; i < hidden; i++) {
        const g = gate[i]!;
        gate[i] = (g / (1 + Math.exp(-g))) * up[i]!;
      }
      const down = matvec(lw.w2, gate, c.dim);
      addBias(down, lw.downBias);
      for (let i = 0; i < c.dim; i++) x[i] = x[i]! + down[i]!;
    }

    const normed = rmsnorm(x, w.finalNorm, c.normEps);
    return matvec(w.lmHead, normed, c.vocabSize);
  }
}

/** Greedy decoding with the reference: feeds `prompt`, then appends argmax tokens. */
export function referenceGreedy(ref: LlamaReference, prompt: readonly number[], steps: number): number[] {
  const out: number[] = [];
  let logits: Float32Array = new Float32Array(0);
  let pos = 0;
  for (const t of prompt) logits = ref.forward(t, pos++);
  for (let s = 0; s < steps; s++) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    out.push(best);
    if (s + 1 < steps) logits = ref.forward(best, pos++);
  }
  return out;
}
