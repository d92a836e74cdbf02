/**
 * Dropout decoding, the per-step choices as plain functions: the options resolved and checked,
 * which context tokens are relevant to a candidate token, each member's drop probabilities, the
 * seeded draws and the majority vote. No runtime here; dropout-decode.ts runs the members.
 *
 * @example
 * const setup = resolveDropout(options.dropout, promptIds, vocab, seed);
 * const q = dropProbabilities(relevant, normEpi, 0.5, setup.minRate, 'epistemic');
 * const { token, margin } = vote([12, 12, 40], 40);  // -> 12, margin 1/3
 */
import type { DropoutOptions } from '../../core/text-types.ts';
import { WhittleError, type ErrorDetails } from '../../core/errors.ts';
import type { Rng } from '../../core/random.ts';

/** Most members one generation may ask for: each one is a row of every member run. */
export const MAX_MEMBERS = 16;

export interface DropoutSetup {
  /** Prompt positions of the marked context tokens, ascending, distinct. */
  positions: number[];
  members: number;
  rates: number[];
  minRate: number;
  topK: number;
  seed: number;
  guidance: 'epistemic' | 'uniform';
}

/** Default member rates: evenly from 0.3 to 0.7 (the paper's [0.3, 0.5, 0.7] for three). */
export function defaultRates(members: number): number[] {
  if (members <= 1) return members === 1 ? [0.5] : [];
  return Array.from({ length: members }, (_, m) => 0.3 + (0.4 * m) / (members - 1));
}

const isRate = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1;

/** Checks `options` against the prompt (typed INVALID_ARGUMENT) and fills the defaults. */
export function resolveDropout(options: DropoutOptions, prompt: readonly number[], bos: number, vocab: number, defaultSeed: number): DropoutSetup {
  const bad = (message: string, details?: ErrorDetails) => new WhittleError('INVALID_ARGUMENT', `dropout: ${message}`, details);
  if (typeof options !== 'object' || options === null) throw bad('options must be an object');
  const members = options.members ?? 3;
  if (!Number.isInteger(members) || members < 0 || members > MAX_MEMBERS) throw bad(`members must be an integer in 0..${MAX_MEMBERS}, got ${members}`);
  const rates = options.rates ?? defaultRates(members);
  if (!Array.isArray(rates) || rates.length !== members || !rates.every(isRate)) throw bad(`rates must be ${members} numbers in [0, 1] (one per member), got ${JSON.stringify(options.rates)}`);
  const minRate = options.minRate ?? 0.1;
  if (!isRate(minRate)) throw bad(`minRate must be a number in [0, 1], got ${minRate}`);
  const topK = options.topK ?? 5;
  if (!Number.isInteger(topK) || topK < 1 || topK > vocab) throw bad(`topK must be an integer in 1..${vocab}, got ${topK}`);
  const seed = options.seed ?? defaultSeed;
  if (!Number.isInteger(seed)) throw bad(`seed must be an integer, got ${seed}`);
  const guidance = options.guidance ?? 'epistemic';
  if (guidance !== 'epistemic' && guidance !== 'uniform') throw bad(`guidance must be 'epistemic' or 'uniform', got ${JSON.stringify(guidance)}`);

  const marked = new Set<number>();
  if (options.context === 'prompt') {
    for (let p = prompt[0] === bos ? 1 : 0; p < prompt.length; p++) marked.add(p);
  } else if (Array.isArray(options.context)) {
    for (const range of options.context) {
      const [start, end] = Array.isArray(range) ? range : [NaN, NaN];
      if (!Number.isInteger(start) || !Number.isInteger(end) || start! < 0 || end! > prompt.length || start! >= end!) {
        throw bad(`context range ${JSON.stringify(range)} must be [start, end) with 0 <= start < end <= ${prompt.length} (the prompt's tokens)`, { range: JSON.stringify(range), promptTokens: prompt.length });
      }
      for (let p = start!; p < end!; p++) marked.add(p);
    }
  } else {
    throw bad("context must be 'prompt' or a list of [start, end) token ranges");
  }
  return { positions: [...marked].sort((a, b) => a - b), members, rates: [...rates], minRate, topK, seed, guidance };
}

/** Min-max normalization to [0, 1]; all equal (no information to rank by): every value 1, so q_i = r_m. */
export function normalizeMinMax(values: ArrayLike<number>): Float64Array {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]!);
    max = Math.max(max, values[i]!);
  }
  const out = new Float64Array(values.length);
  const span = max - min;
  for (let i = 0; i < values.length; i++) out[i] = span > 1e-12 ? (values[i]! - min) / span : 1;
  return out;
}

/**
 * For each token id, the marked context tokens (indices into `positions`) whose top-k contains it:
 * the per-step relevance lookup is then one map read.
 */
export function relevanceIndex(topK: Int32Array, k: number): Map<number, number[]> {
  const index = new Map<number, number[]>();
  const n = topK.length / k;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < k; j++) {
      const id = topK[i * k + j]!;
      if (id < 0) continue;
      const list = index.get(id);
      if (list) list.push(i);
      else index.set(id, [i]);
    }
  }
  return index;
}

/**
 * Drop probabilities of the relevant tokens (indices into the marked context) for a member of
 * rate `rate`: 'epistemic' q_i = minRate + (rate - minRate) * norm_i; 'uniform' the mean of those,
 * for every one (the same expected number of drops without the guidance).
 */
export function dropProbabilities(relevant: readonly number[], normEpistemic: Float64Array, rate: number, minRate: number, guidance: 'epistemic' | 'uniform'): Float64Array {
  const q = new Float64Array(relevant.length);
  relevant.forEach((i, j) => (q[j] = minRate + (rate - minRate) * normEpistemic[i]!));
  if (guidance === 'uniform' && q.length > 0) q.fill(q.reduce((a, b) => a + b, 0) / q.length);
  return q;
}

/** Which relevant tokens one member drops: each independently with its probability (one draw per token, in order). */
export function drawDrops(relevant: readonly number[], q: Float64Array, rng: Rng): number[] {
  const dropped: number[] = [];
  relevant.forEach((i, j) => {
    if (rng() < q[j]!) dropped.push(i);
  });
  return dropped;
}

/**
 * Majority vote over the members' tokens. A tie for the most votes goes to the base pass's token
 * (whether or not it is among the tied). `margin` = (top count - runner-up count) / members.
 */
export function vote(tokens: readonly number[], base: number): { token: number; margin: number } {
  if (tokens.length === 0) return { token: base, margin: 0 };
  const counts = new Map<number, number>();
  for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
  const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const top = sorted[0]![1];
  const second = sorted[1]?.[1] ?? 0;
  const margin = (top - second) / tokens.length;
  return { token: top === second ? base : sorted[0]![0], margin };
}
