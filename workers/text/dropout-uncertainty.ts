/**
 * Dropout decoding, step 1: the uncertainty of each marked context token (the paper's
 * decomposition, "From Uncertainty to Trust", applied to text), computed during the prefill.
 * Each marked position's hidden state goes through the final norm and LM head to
 * P_i = softmax(z_i); P̄ = S / n with S = Σ_i P_i over the n marked positions;
 *   aleatoric_i = H(P_i)        = -Σ_v P_i(v) log P_i(v)
 *   epistemic_i = KL(P_i ‖ P̄)  =  Σ_v P_i(v) log P_i(v) - Σ_v P_i(v) log S(v) + log n
 * plus each P_i's top-k ids, which decide per step which positions are "relevant" to a candidate
 * token.
 *
 * The reduction over the vocabulary happens in the prefill graphs (models/llama/graph.ts,
 * `emitScoredHead`): only O(n) numbers per row (Σ P log P, Σ P log S, k ids) and the marked
 * rows' final-normed states [n, dim] cross from the runtime, never the n x vocab
 * logits (at SmolLM2's 49152 tokens, 256 marked rows were 50 MB per prompt). KL needs S, the sum
 * over *every* marked row, but the prompt runs in chunks (runner.prefillChunk): so the chunks
 * before the last return only their marked rows' normed states [M, dim], and the last chunk's
 * run scores all n rows at once (its own, and the earlier ones fed back as `scored_in`) with the
 * same head initializer that makes its logits: no second copy of the head, no extra run, and each
 * row through the head once. (Decode steps and members skip these nodes: an If in the graph.)
 *
 * That last run holds about three [n, vocab] float tensors (the head's output or its split, P,
 * log P). Above
 * SCORED_BYTES per tensor the rows are scored in two passes instead: each chunk scores its own
 * rows (Σ P log P, top-k, and its Σ P, summed here in float64), then scratch runs (nothing
 * cached) score the rows again, consecutive chunks' rows together up to the same row limit,
 * against the full S (`mass_in` = S minus the group's own mass, which the graph adds back):
 * bounded memory, for one extra run per group, a second head product per marked row and one
 * vocab vector per chunk out of the runtime.
 *
 * An int8 head (DynamicQuantizeMatMul) quantizes its input per tensor, so its logits of a row
 * depend on the other rows of the run: with one, these numbers are those of the rows headed
 * together (all n in one pass), as the per-chunk logits rows were before.
 *
 * @example
 * const { logits, uncertainty } = await prefillUncertainty(runner, prompt, marked, 5);
 * uncertainty.epistemic[i]; uncertainty.topK.subarray(i * 5, i * 5 + 5);
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import type { PlanRunner, RowsResult } from './runner.ts';

export interface ContextUncertainty {
  /** H(P_i) per marked position, nats [n]. */
  aleatoric: Float64Array;
  /** KL(P_i ‖ P̄) per marked position, nats [n]. */
  epistemic: Float64Array;
  /** Top-k token ids of each P_i, most probable first [n * k]. */
  topK: Int32Array;
  k: number;
}

/**
 * Most bytes of one [rows, vocab] float tensor a scoring run may make (the run holds about three
 * such); more marked rows than that are scored in two passes. 64 MiB: 341 rows at SmolLM2's
 * vocabulary, 130 at Llama 3's, every row of a 512-token model's context.
 */
export const SCORED_BYTES = 64 * 2 ** 20;

/** What the prefill moved across the runtime boundary for the uncertainty, in bytes (bench). */
export interface UncertaintyTransfer {
  /** Fetched from the runtime: normed rows, per-row sums, top-k ids, mass vectors (not the logits the prefill fetches anyway). */
  out: number;
  /** Fed back into it: normed rows (`scored_in`) and masses (`mass_in`). */
  in: number;
  /** Runs beyond the prefill's chunks (the two-pass path's scratch runs). */
  extraRuns: number;
  /**
   * Time beyond the prefill's own runs, ms: the scratch runs and the host's last step (sums to H
   * and KL). The in-graph scoring is inside the chunks' runs (the prefill's time).
   */
  extraMs: number;
}

/** Per-row sums one scoring run returned, in scoring order. */
interface RowSums {
  plogp: Float32Array;
  cross: Float32Array;
  topIds: BigInt64Array;
}

const bytesOf = (r: RowsResult) => r.normed.byteLength + r.scored.plogp.byteLength + r.scored.cross.byteLength + r.scored.mass.byteLength + r.scored.topIds.byteLength;

/**
 * Prefills `prompt` (a fresh cache) through the dropout variant and returns the last position's
 * logits [vocab] and the uncertainty of the `marked` positions (ascending prompt positions).
 * `rowsPerRun` overrides SCORED_BYTES's row limit (tests exercise the two-pass path with it).
 */
export async function prefillUncertainty(runner: PlanRunner, prompt: readonly number[], marked: readonly number[], k: number, signal?: AbortSignal, rowsPerRun?: number): Promise<{ logits: Float32Array; uncertainty: ContextUncertainty; transfer: UncertaintyTransfer }> {
  const vocab = runner.vocabSize;
  const dim = runner.hiddenSize;
  if (!Number.isInteger(k) || k < 1 || k > vocab) throw new WhittleError('INVALID_ARGUMENT', `topK must be an integer in 1..${vocab}, got ${k}`);
  for (let i = 0; i < marked.length; i++) {
    const p = marked[i]!;
    if (!Number.isInteger(p) || p < 0 || p >= prompt.length || (i > 0 && p <= marked[i - 1]!)) throw new WhittleError('INTERNAL', `marked positions must ascend inside the prompt, got ${p} at ${i}`);
  }
  const n = marked.length;
  const limit = rowsPerRun ?? Math.max(1, Math.floor(SCORED_BYTES / (vocab * 4)));
  const onePass = n <= limit;
  const transfer: UncertaintyTransfer = { out: 0, in: 0, extraRuns: 0, extraMs: 0 };
  const normed = new Float32Array(n * dim);
  const sums: RowSums = { plogp: new Float32Array(n), cross: new Float32Array(n), topIds: new BigInt64Array(n * k) };
  // Two passes: Σ P per chunk of marked rows (float64), and which rows each chunk holds.
  const mass = new Float64Array(onePass ? 0 : vocab);
  const chunkMass: { from: number; to: number; mass: Float32Array }[] = [];
  const chunk = Math.max(1, Math.floor(runner.prefillChunk));
  let logits: Float32Array = new Float32Array(0);
  let next = 0; // index into `marked`
  for (let start = 0; start < prompt.length; start += chunk) {
    throwIfAborted(signal);
    const part = prompt.slice(start, start + chunk);
    const final = start + part.length >= prompt.length;
    const first = next;
    const own: number[] = [];
    while (next < n && marked[next]! < start + part.length) own.push(marked[next++]! - start);
    // One pass: only the last chunk scores, all n rows (its own, then the earlier ones' normed states).
    const scoreOwn = !onePass || final;
    const scoredIn = onePass && final ? normed.subarray(0, first * dim) : new Float32Array(0);
    const out = await runner.scoreRows(part, { positions: part.map((_, s) => start + s), logitRows: [part.length - 1], append: true, scoring: { marked: own, scoreOwn, scoredIn, topK: k, wantMass: !onePass } }, signal);
    transfer.out += bytesOf(out);
    transfer.in += scoredIn.byteLength;
    normed.set(out.normed, first * dim);
    logits = out.logits;
    if (!scoreOwn) continue;
    // Scoring order: this run's own rows (marked[first..next]), then scored_in's (marked[0..first]).
    const order = [...own.keys()].map((j) => first + j);
    if (scoredIn.length > 0) for (let i = 0; i < first; i++) order.push(i);
    copyRowSums(out.scored, order, k, sums, !onePass);
    if (!onePass && own.length > 0) {
      for (let v = 0; v < vocab; v++) mass[v] = mass[v]! + out.scored.mass[v]!;
      chunkMass.push({ from: first, to: next, mass: out.scored.mass });
    }
  }
  const t0 = performance.now();
  if (!onePass) {
    // Pass 2: each chunk's rows again, against the full S: mass_in = S minus the chunk's own
    // mass, which the run recomputes and adds back. A scratch run (nothing cached): the prompt's
    // last token again at its own position; its logits are not read.
    const last = prompt.at(-1)!;
    for (const c of groupChunks(chunkMass, limit)) {
      throwIfAborted(signal);
      const massIn = new Float32Array(vocab);
      for (let v = 0; v < vocab; v++) massIn[v] = Math.max(0, mass[v]! - c.mass[v]!);
      const scoredIn = normed.subarray(c.from * dim, c.to * dim);
      // One logit row all the same: a run with none would make an empty `logits`, which WebGPU's kernels refuse.
      const out = await runner.scoreRows([last], { positions: [runner.position - 1], logitRows: [0], append: false, scoring: { marked: [], scoreOwn: false, scoredIn, massIn, topK: k } }, signal);
      transfer.out += bytesOf(out);
      transfer.in += scoredIn.byteLength + massIn.byteLength;
      transfer.extraRuns++;
      for (let j = 0; j < c.to - c.from; j++) sums.cross[c.from + j] = out.scored.cross[j]!;
    }
  }
  const uncertainty = uncertaintyFromSums(sums, n, k);
  transfer.extraMs = performance.now() - t0;
  return { logits, uncertainty, transfer };
}

/**
 * Consecutive chunks' marked rows merged into groups of at most `limit` rows (a chunk with more
 * stays alone), each with its rows' Σ P (float64): one scratch run per group.
 */
function groupChunks(chunks: readonly { from: number; to: number; mass: Float32Array }[], limit: number): { from: number; to: number; mass: Float64Array }[] {
  const groups: { from: number; to: number; mass: Float64Array }[] = [];
  for (const c of chunks) {
    const open = groups.at(-1);
    const group = open && c.to - open.from <= limit ? open : null;
    if (group) group.to = c.to;
    else groups.push({ from: c.from, to: c.to, mass: new Float64Array(c.mass.length) });
    const into = groups.at(-1)!.mass;
    for (let v = 0; v < into.length; v++) into[v] = into[v]! + c.mass[v]!;
  }
  return groups;
}

/** Copies one run's per-row sums into marked order; `withoutCross` leaves the cross terms (pass 2 fills them). */
function copyRowSums(scored: RowsResult['scored'], order: readonly number[], k: number, into: RowSums, withoutCross: boolean): void {
  order.forEach((i, j) => {
    into.plogp[i] = scored.plogp[j]!;
    if (!withoutCross) into.cross[i] = scored.cross[j]!;
    into.topIds.set(scored.topIds.subarray(j * k, (j + 1) * k), i * k);
  });
}

/**
 * H and KL from the graph's per-row sums (see the file comment), in float64: H = -Σ P log P,
 * KL = Σ P log P - Σ P log S + log n, both clamped at 0 (float32 sums can leave -1e-7 where
 * P_i is one-hot or equals P̄).
 */
function uncertaintyFromSums(sums: RowSums, n: number, k: number): ContextUncertainty {
  const aleatoric = new Float64Array(n);
  const epistemic = new Float64Array(n);
  const logN = Math.log(n);
  for (let i = 0; i < n; i++) {
    aleatoric[i] = Math.max(0, -sums.plogp[i]!);
    epistemic[i] = Math.max(0, sums.plogp[i]! - sums.cross[i]! + logN);
  }
  return { aleatoric, epistemic, topK: Int32Array.from(sums.topIds, Number), k };
}

/** Summary of a set of values for stats: min, mean, max. */
export function summarize(values: ArrayLike<number>): { min: number; mean: number; max: number } {
  if (values.length === 0) return { min: 0, mean: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    const x = values[i]!;
    min = Math.min(min, x);
    max = Math.max(max, x);
    sum += x;
  }
  return { min, mean: sum / values.length, max };
}
