/**
 * The self-speculative decode loop (LayerSkip): draft through the plan's early exit, verify the
 * drafts in one pass of the later layers, keep what the full model agrees with. A token source
 * for TextEngine.generate, like plain-decode.ts; plus the counters it keeps and the stats they
 * become.
 *
 * @example
 * const counters = newSpecCounters();
 * const source = speculativeTokens(runner, promptIds, history, sampling, rng, () => 3, counters, () => {}, maxSeqLen, signal, onPrefill);
 * // ...consume; then:
 * const stats = speculationStats(counters, { exit: 2, draft: 3 });
 */
import type { SpeculationStats } from '../../core/text-types.ts';
import type { Produced } from './plain-decode.ts';
import type { PlanRunner } from './runner.ts';
import { acceptDraft, drawFrom, isGreedy, residualDistribution, sample, tokenDistribution, type Rng, type SamplingOptions } from './sampler.ts';

/** Running totals of a speculative generation (what SpeculationStats reports). */
export interface SpecCounters {
  rounds: number;
  drafted: number;
  accepted: number;
  produced: number;
  draftMs: number;
  verifyMs: number;
}

export function newSpecCounters(): SpecCounters {
  return { rounds: 0, drafted: 0, accepted: 0, produced: 0, draftMs: 0, verifyMs: 0 };
}

/** What a speculative generation was set up with: the exit it drafts through, the draft length asked for, and the calibration that chose the exit. */
export interface SpeculationSetup {
  exit: number;
  draft: number | 'auto';
  calibration?: SpeculationStats['calibration'];
}

/** The `stats.speculation` of a finished generation. */
export function speculationStats(counters: SpecCounters, setup: SpeculationSetup): SpeculationStats {
  const c = counters;
  return {
    exit: setup.exit,
    draft: setup.draft,
    meanDraft: c.rounds > 0 ? c.drafted / c.rounds : 0,
    rounds: c.rounds,
    drafted: c.drafted,
    accepted: c.accepted,
    acceptance: c.drafted > 0 ? c.accepted / c.drafted : 0,
    tokensPerRound: c.rounds > 0 ? c.produced / c.rounds : 0,
    draftMs: c.draftMs,
    verifyMs: c.verifyMs,
    ...(setup.calibration ? { calibration: setup.calibration } : {}),
  };
}

/** Row `row` of a [rows, vocab] logits matrix (a view). */
function rowLogits(all: Float32Array, row: number, vocab: number): Float32Array {
  return all.subarray(row * vocab, (row + 1) * vocab);
}

/**
 * Self-speculative decoding. Invariant at the top of a round: every layer has cached positions
 * < P, and `t0` (already yielded) is the token at P, not yet fed.
 * Draft: feed t0, d1..dd through the exit segment (d+1 one-token runs), drawing d1..dd from the
 * exit head's distribution q_i and keeping each exit hidden state. Verify: one run of the later
 * layers over those d+1 hidden states gives the full model's distributions p_0..p_d. Greedy
 * (one-hot p, q): accept drafts while they equal the full model's argmax. Sampling: accept d_i
 * with probability min(1, p_i(d_i) / q_i(d_i)); the first rejection is replaced by a draw from
 * norm(max(0, p_i - q_i)); after d accepted drafts the bonus token is drawn from p_d. Either way
 * the tokens are distributed as full-depth decoding's. Caches are cut back to the accepted
 * prefix, so layers before the exit never run twice for a token.
 */
export async function* speculativeTokens(
  runner: PlanRunner,
  prompt: number[],
  history: readonly number[],
  sampling: SamplingOptions,
  rng: Rng,
  draftLength: () => number,
  counters: SpecCounters,
  onRound: (round: { drafted: number; accepted: number; draftMs: number; verifyMs: number }) => void,
  maxSeqLen: number,
  signal: AbortSignal,
  onPrefill: () => void,
): AsyncGenerator<Produced, void, undefined> {
  const greedy = isGreedy(sampling);
  // Where a token comes from one distribution (greedy drafts and checks, the first token, the
  // bonus token) it is exactly what plain decoding does: sample() (greedy consumes no rng).
  const pick = (logits: Float32Array, hist: readonly number[]) => sample(logits, sampling, hist, rng);
  const logits = await runner.step(prompt, { signal });
  onPrefill();
  const vocab = logits.length;
  let t0 = pick(logits, history);
  yield { token: t0, origin: 'verifier' };
  for (;;) {
    const P = runner.position;
    if (P >= maxSeqLen) return;
    const d = Math.min(draftLength(), maxSeqLen - P - 1); // 0 at the context end: just the verifier's token
    const drafts: number[] = [];
    const q: Float64Array[] = []; // [d] draft distributions (sampling only)
    let hiddens: Float32Array | null = null; // [d+1, dim]
    let tok = t0;
    const tDraft = performance.now();
    for (let i = 0; i <= d; i++) {
      const out = await runner.draftStep(tok, signal);
      hiddens ??= new Float32Array((d + 1) * out.hidden.length);
      hiddens.set(out.hidden, i * out.hidden.length);
      if (i < d) {
        const hist = [...history, ...drafts];
        if (greedy) tok = pick(out.logits, hist);
        else {
          q.push(tokenDistribution(out.logits, sampling, hist));
          tok = drawFrom(q[i]!, rng());
        }
        drafts.push(tok);
      }
    }
    const tVerify = performance.now();
    const full = await runner.verify(hiddens!, d + 1, signal); // [d+1, vocab]
    let accepted = 0;
    let next = -1;
    for (; accepted < d; accepted++) {
      const row = rowLogits(full, accepted, vocab);
      const hist = [...history, ...drafts.slice(0, accepted)];
      if (greedy) {
        const choice = pick(row, hist);
        if (choice !== drafts[accepted]) {
          next = choice;
          break;
        }
      } else {
        const p = tokenDistribution(row, sampling, hist);
        if (!acceptDraft(p, q[accepted]!, drafts[accepted]!, rng())) {
          next = drawFrom(residualDistribution(p, q[accepted]!), rng());
          break;
        }
      }
    }
    if (next < 0) {
      const row = rowLogits(full, d, vocab);
      const hist = [...history, ...drafts];
      next = pick(row, hist);
    }
    await runner.truncate(P + accepted + 1);
    const round = { drafted: d, accepted, draftMs: tVerify - tDraft, verifyMs: performance.now() - tVerify };
    counters.rounds++;
    counters.drafted += d;
    counters.accepted += accepted;
    counters.produced += accepted + 1;
    counters.draftMs += round.draftMs;
    counters.verifyMs += round.verifyMs;
    onRound(round);
    for (let i = 0; i < accepted; i++) yield { token: drafts[i]!, origin: 'draft' };
    yield { token: next, origin: 'verifier', ...(accepted < d ? { rejected: drafts.slice(accepted) } : {}) };
    t0 = next;
  }
}
