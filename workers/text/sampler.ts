/**
 * Token sampling as pure functions over typed arrays: no model, no state beyond the PRNG the
 * caller passes in. Order of operations follows llama.cpp/HF: repetition penalty on raw logits,
 * then temperature, then top-k, then top-p, then a draw.
 *
 * @example
 * const rng = createRng(42);
 * const next = sample(logits, { temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.1 }, history, rng);
 */
import type { Rng } from '../../core/random.ts';
import type { SamplingOptions } from '../../core/text-types.ts';

/** The options are a public type (core/text-types.ts); re-exported for the engine's modules. */
export type { SamplingOptions } from '../../core/text-types.ts';
/** Seeded uniform [0, 1) generator (mulberry32), shared with the rest of Whittle. */
export { createRng, type Rng } from '../../core/random.ts';

/** Index of the largest value; the lowest index wins ties (matches run.c). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

/** Returns a copy of `logits` with tokens seen in `history` penalized. */
export function applyRepetitionPenalty(logits: Float32Array, history: Iterable<number>, penalty: number): Float32Array {
  const out = logits.slice();
  if (penalty === 1) return out;
  for (const t of new Set(history)) {
    if (t < 0 || t >= out.length) continue;
    const v = out[t]!;
    out[t] = v > 0 ? v / penalty : v * penalty;
  }
  return out;
}

/** softmax(logits / temperature) in float64 for stable sums. */
export function softmax(logits: ArrayLike<number>, temperature = 1): Float64Array {
  const p = new Float64Array(logits.length);
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    p[i] = Math.exp((logits[i]! - max) / temperature);
    sum += p[i]!;
  }
  for (let i = 0; i < p.length; i++) p[i] = p[i]! / sum;
  return p;
}

/**
 * Zeroes every probability outside the top-k and outside the top-p nucleus, then renormalizes.
 * Candidates are sorted by probability, ties broken by lower token id (deterministic).
 */
export function filterTopKTopP(probs: Float64Array, topK = 0, topP = 1): Float64Array {
  const order = Array.from(probs.keys()).sort((a, b) => probs[b]! - probs[a]! || a - b);
  let keep = topK > 0 ? Math.min(topK, order.length) : order.length;
  if (topP < 1) {
    let cum = 0;
    for (let i = 0; i < keep; i++) {
      cum += probs[order[i]!]!;
      if (cum >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  const out = new Float64Array(probs.length);
  let sum = 0;
  for (let i = 0; i < keep; i++) sum += probs[order[i]!]!;
  for (let i = 0; i < keep; i++) out[order[i]!] = probs[order[i]!]! / sum;
  return out;
}

/** Draws an index from a distribution that sums to 1 with one uniform number. */
export function drawFrom(probs: Float64Array, u: number): number {
  let cum = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! <= 0) continue;
    cum += probs[i]!;
    last = i;
    if (u < cum) return i;
  }
  return last; // rounding: u landed past the final cumulative sum
}

/** `logits` with the repetition penalty applied when one is set (a copy), else `logits` itself. */
export function penalized(logits: Float32Array, options: SamplingOptions, history: Iterable<number>): Float32Array {
  return options.repetitionPenalty && options.repetitionPenalty !== 1 ? applyRepetitionPenalty(logits, history, options.repetitionPenalty) : logits;
}

/**
 * The distribution `sample` draws from [vocab]: repetition penalty, temperature, top-k, top-p
 * applied; one-hot at the argmax when greedy. Speculative sampling needs it for both the draft
 * and the verifier, with the same settings, so the acceptance ratio compares like with like.
 */
export function tokenDistribution(logits: Float32Array, options: SamplingOptions, history: Iterable<number>): Float64Array {
  const x = penalized(logits, options, history);
  if (isGreedy(options)) {
    const p = new Float64Array(logits.length);
    p[argmax(x)] = 1;
    return p;
  }
  return filterTopKTopP(softmax(x, options.temperature ?? 1), options.topK ?? 0, options.topP ?? 1);
}

/** Whether `options` mean greedy decoding (no randomness). */
export function isGreedy(options: SamplingOptions): boolean {
  return options.greedy === true || (options.temperature ?? 1) <= 0;
}

/** Picks the next token from `logits` [vocab]. `history` is what the repetition penalty looks at. */
export function sample(logits: Float32Array, options: SamplingOptions, history: Iterable<number>, rng: Rng): number {
  if (isGreedy(options)) return argmax(penalized(logits, options, history));
  return drawFrom(tokenDistribution(logits, options, history), rng());
}

/**
 * Speculative sampling's acceptance test (Leviathan et al. 2023, Chen et al. 2023) for a token
 * `x` drawn from the draft distribution `q`: accept with probability min(1, p(x) / q(x)), where
 * `p` is the verifier's distribution, using the uniform number `u`. With `residual` below for
 * rejections, the accepted-or-replaced token is distributed exactly as p.
 */
export function acceptDraft(p: Float64Array, q: Float64Array, x: number, u: number): boolean {
  const qx = q[x]!;
  if (qx <= 0) return false; // x cannot have come from q; never accept what p alone would not justify
  return u < Math.min(1, p[x]! / qx);
}

/**
 * Where a rejected draft's replacement is drawn from: norm(max(0, p - q)) [vocab]. When p <= q
 * everywhere (only possible when p == q, where rejection has probability 0 but rounding can
 * still land there) it falls back to p itself.
 */
export function residualDistribution(p: Float64Array, q: Float64Array): Float64Array {
  const r = new Float64Array(p.length);
  let sum = 0;
  for (let i = 0; i < p.length; i++) {
    const v = p[i]! - q[i]!;
    if (v > 0) {
      r[i] = v;
      sum += v;
    }
  }
  if (!(sum > 1e-12)) return p.slice();
  for (let i = 0; i < r.length; i++) r[i] = r[i]! / sum;
  return r;
}
