/**
 * Context uncertainty of dropout decoding computed the direct way, for tests: from each marked
 * row's whole logits row [n, vocab], in float64, two passes (H(P_i), top-k and Σ P_i; then
 * KL(P_i ‖ P̄) against the mean). This was the production path until the reduction moved into
 * the graph (workers/text/dropout-uncertainty.ts); it stays as the oracle the in-graph numbers
 * are checked against, itself checked against a naive exp / sum version (uncertainty-ref.test.ts).
 *
 *   aleatoric_i = H(P_i)        = -Σ_v P_i(v) log P_i(v)
 *   epistemic_i = KL(P_i ‖ P̄)  =  Σ_v P_i(v) (log P_i(v) - log P̄(v))
 *
 * @example
 * const u = contextUncertainty(rows, n, vocab, 5);
 * u.epistemic[i]; u.topK.subarray(i * 5, i * 5 + 5);
 */
import { WhittleError } from '../../core/errors.ts';

/** The same fields as workers/text/dropout-uncertainty.ts `ContextUncertainty` (models/ does not import workers/). */
export interface ContextUncertainty {
  /** H(P_i) per marked position, nats [n]. */
  aleatoric: Float64Array;
  /** KL(P_i ‖ P̄) per marked position, nats [n]. */
  epistemic: Float64Array;
  /** Top-k token ids of each P_i, most probable first [n * k]. */
  topK: Int32Array;
  k: number;
}

/** log-softmax of one logits row into `out` (float64). */
function logSoftmaxRow(logits: Float32Array, offset: number, vocab: number, out: Float64Array): void {
  let max = -Infinity;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[offset + v]!);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp(logits[offset + v]! - max);
  const lse = max + Math.log(sum);
  for (let v = 0; v < vocab; v++) out[v] = logits[offset + v]! - lse;
}

/** The k largest entries' indices of one row, largest first (ties: lower id first). */
export function topKIds(row: ArrayLike<number>, offset: number, length: number, k: number, out: Int32Array, outOffset: number): void {
  const ids: number[] = [];
  for (let v = 0; v < length; v++) {
    const x = row[offset + v]!;
    if (ids.length === k && x <= row[offset + ids[k - 1]!]!) continue;
    // Insertion into a sorted list of at most k: k is small (5).
    let at = ids.length;
    while (at > 0 && row[offset + ids[at - 1]!]! < x) at--;
    ids.splice(at, 0, v);
    if (ids.length > k) ids.pop();
  }
  for (let i = 0; i < k; i++) out[outOffset + i] = ids[i] ?? -1;
}

/** Uncertainty of `n` marked positions from their logits rows [n, vocab]. */
export function contextUncertainty(logits: Float32Array, n: number, vocab: number, k: number): ContextUncertainty {
  if (logits.length !== n * vocab) throw new WhittleError('INTERNAL', `uncertainty: ${logits.length} logits for ${n} rows of ${vocab}`);
  if (!Number.isInteger(k) || k < 1 || k > vocab) throw new WhittleError('INVALID_ARGUMENT', `topK must be an integer in 1..${vocab}, got ${k}`);
  const aleatoric = new Float64Array(n);
  const epistemic = new Float64Array(n);
  const topK = new Int32Array(n * k);
  if (n === 0) return { aleatoric, epistemic, topK, k };
  const logp = new Float64Array(vocab);
  const mean = new Float64Array(vocab); // P̄
  // Pass 1: H(P_i), top-k, and the sum of the P_i.
  for (let i = 0; i < n; i++) {
    logSoftmaxRow(logits, i * vocab, vocab, logp);
    let h = 0;
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(logp[v]!);
      mean[v] = mean[v]! + p;
      if (p > 0) h -= p * logp[v]!;
    }
    aleatoric[i] = h;
    topKIds(logits, i * vocab, vocab, k, topK, i * k);
  }
  const logMean = new Float64Array(vocab);
  for (let v = 0; v < vocab; v++) logMean[v] = Math.log(mean[v]! / n);
  // Pass 2: KL(P_i ‖ P̄) (P̄ > 0 wherever P_i > 0, since P_i is one of its terms).
  for (let i = 0; i < n; i++) {
    logSoftmaxRow(logits, i * vocab, vocab, logp);
    let kl = 0;
    for (let v = 0; v < vocab; v++) {
      const p = Math.exp(logp[v]!);
      if (p > 0) kl += p * (logp[v]! - logMean[v]!);
    }
    epistemic[i] = Math.max(0, kl); // rounding can leave -1e-17
  }
  return { aleatoric, epistemic, topK, k };
}
