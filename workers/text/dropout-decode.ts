/**
 * Dropout decoding's loop (uncertainty-guided context-token dropout ensembles), a token source
 * for TextEngine.generate like plain-decode.ts. It runs on a PlanRunner compiled with the
 * dropout variant of the graphs (SegmentOptions.dropout: per-row positions and mask, chosen
 * logit rows), which otherwise computes what the plain graphs compute.
 *
 * - Prefill: the prompt in chunks; the graphs also reduce the marked context rows through the
 *   head to each one's uncertainty (dropout-uncertainty.ts: O(n) numbers leave the runtime).
 * - Each step: the base pass (an ordinary decode step, appended to the cache) proposes y; the
 *   context tokens whose top-k holds y are relevant; each member draws which of them to drop
 *   (dropout-members.ts); the members that drop something run as rows of ONE run: the last token
 *   again at its own position, each row seeing the shared cache minus its dropped positions
 *   (through the mask only: positions and cached keys unchanged, nothing re-encoded) and its own
 *   key/value of that token in place of the base pass's. Their rows are not cached: the cache
 *   continues from the shared prefix with the base pass's entry. Majority vote, ties to y.
 *
 * Departures from the paper (visual tokens, one projection of each image token): the context is
 * whatever token ranges the caller marks; relevance is "y in the token's top-k"; members that
 * drop nothing are not run (their logits are the base pass's), and a step with no relevant token
 * runs no member at all, so it costs one plain step.
 *
 * @example
 * const source = dropoutTokens(runner, promptIds, history, options, setup, counters, maxSeqLen, signal, onPrefill);
 */
import { WhittleError } from '../../core/errors.ts';
import type { DropoutStats, SamplingOptions } from '../../core/text-types.ts';
import { createRng, type Rng } from '../../core/random.ts';
import { dropProbabilities, drawDrops, normalizeMinMax, relevanceIndex, vote, type DropoutSetup } from './dropout-members.ts';
import { prefillUncertainty, summarize, type ContextUncertainty } from './dropout-uncertainty.ts';
import type { Produced } from './plain-decode.ts';
import { MASKED_SCORE, type PlanRunner } from './runner.ts';
import { isGreedy, sample } from './sampler.ts';

/** One step's ensemble: what each member did and what the vote chose. */
export interface EnsembleStep {
  token: number;
  base: number;
  /** Each member's token. */
  votes: number[];
  /** Prompt positions each member dropped. */
  dropped: number[][];
  /** Each member's logits [vocab] (the base pass's for a member that dropped nothing). */
  memberLogits: Float32Array[];
  margin: number;
  /** Whether a member run happened. */
  ran: boolean;
  /**
   * The base pass's logits after `token` when the member run also carried it (`fuse`, and the
   * vote kept the base token): the caller's next step needs no run of its own.
   */
  next?: Float32Array;
}

/**
 * The per-step ensemble over a prefilled dropout runner: holds the context's uncertainty and the
 * drop generator. `step` decides one token from the base pass's logits; the bench drives it
 * teacher-forced (NLL of a given continuation).
 */
export class DropoutEnsemble {
  private readonly normEpistemic: Float64Array;
  private readonly relevance: Map<number, number[]>;
  /** Drops and members' samples: one stream, seeded by the setup. */
  private readonly rng: Rng;
  readonly counters: { steps: number; ensembleSteps: number; dropsPerMember: number[]; changedByVote: number; marginSum: number; memberRuns: number; memberMs: number; fusedRuns: number; overturnedFused: number };

  constructor(
    private readonly runner: PlanRunner,
    readonly setup: DropoutSetup,
    /** The marked positions' uncertainty, from the prefill (prefillUncertainty). */
    readonly uncertainty: ContextUncertainty,
    private readonly sampling: SamplingOptions,
  ) {
    if (uncertainty.aleatoric.length !== setup.positions.length || uncertainty.k !== setup.topK) throw new WhittleError('INTERNAL', `uncertainty of ${uncertainty.aleatoric.length} rows (top-${uncertainty.k}) for ${setup.positions.length} marked (top-${setup.topK})`);
    this.normEpistemic = normalizeMinMax(this.uncertainty.epistemic);
    this.relevance = relevanceIndex(this.uncertainty.topK, setup.topK);
    this.rng = createRng(setup.seed);
    this.counters = { steps: 0, ensembleSteps: 0, dropsPerMember: new Array<number>(setup.members).fill(0), changedByVote: 0, marginSum: 0, memberRuns: 0, memberMs: 0, fusedRuns: 0, overturnedFused: 0 };
  }

  /**
   * Decides the next token from the base pass's `logits` (the runner's cache ends with `last`,
   * the token those logits followed). `candidate` overrides the base pass's own pick (teacher
   * forcing in the bench); otherwise it is drawn like plain decoding.
   *
   * `fuse` (where the runner can cache part of a run, WASM): the member run also carries the next
   * base pass, the base token at the next position, betting that the vote keeps it (it almost
   * always does): one run per step instead of two. When the vote overturns it, its cache entry is
   * truncated and the caller runs the voted token as usual.
   */
  async step(logits: Float32Array, last: number, history: readonly number[], signal?: AbortSignal, candidate?: number, fuse = false): Promise<EnsembleStep> {
    const { setup } = this;
    this.counters.steps++;
    const base = candidate ?? this.pick(logits, history);
    // The token the members re-run (cached at position - 1) is their input, not context they can
    // drop: when the prompt's last token is marked, it is left out of the first step's draws.
    const fed = this.runner.position - 1;
    const relevant = (this.relevance.get(base) ?? []).filter((i) => setup.positions[i]! < fed);
    const dropped = setup.rates.map((rate) => (relevant.length ? drawDrops(relevant, dropProbabilities(relevant, this.normEpistemic, rate, setup.minRate, setup.guidance), this.rng) : []));
    const running = dropped.map((d, m) => (d.length > 0 ? m : -1)).filter((m) => m >= 0);
    const perMember: Float32Array[] = dropped.map(() => logits);
    const vocab = this.runner.vocabSize;
    let next: Float32Array | undefined;
    if (running.length > 0) {
      const t0 = performance.now();
      const drops = running.map((m) => dropped[m]!.map((i) => setup.positions[i]!));
      const fused = fuse && this.runner.canAppendRows && this.runner.position < this.runner.maxPositions;
      const out = await memberLogits(this.runner, last, drops, signal, fused ? base : undefined);
      running.forEach((m, j) => (perMember[m] = out.subarray(j * vocab, (j + 1) * vocab)));
      if (fused) {
        next = out.subarray(running.length * vocab);
        this.counters.fusedRuns++;
      }
      this.counters.memberRuns++;
      this.counters.memberMs += performance.now() - t0;
    }
    // Members that dropped nothing share the base logits: greedy, that is the base token itself.
    const votes = perMember.map((l) => (l === logits && candidate === undefined && this.greedy ? base : this.pick(l, history)));
    const { token, margin } = vote(votes, base);
    const positions = dropped.map((d) => d.map((i) => setup.positions[i]!));
    if (running.length > 0) {
      this.counters.ensembleSteps++;
      this.counters.marginSum += margin;
      positions.forEach((d, m) => (this.counters.dropsPerMember[m]! += d.length));
    }
    if (token !== base) this.counters.changedByVote++;
    if (next && token !== base) {
      // The fused base pass fed a token the vote overturned: forget its cache entry.
      await this.runner.truncate(this.runner.position - 1);
      this.counters.overturnedFused++;
      next = undefined;
    }
    return { token, base, votes, dropped: positions, memberLogits: perMember, margin, ran: running.length > 0, ...(next ? { next } : {}) };
  }

  private get greedy(): boolean {
    return isGreedy(this.sampling);
  }

  private pick(logits: Float32Array, history: readonly number[]): number {
    return sample(logits, this.sampling, history, this.rng);
  }


  /** The generation's stats. */
  stats(uncertaintyMs: number): DropoutStats {
    const { setup, uncertainty: u, counters: c } = this;
    return {
      members: setup.members,
      rates: setup.rates,
      context: { positions: setup.positions, aleatoric: [...u.aleatoric], epistemic: [...u.epistemic] },
      uncertainty: { aleatoric: summarize(u.aleatoric), epistemic: summarize(u.epistemic) },
      steps: c.steps,
      ensembleSteps: c.ensembleSteps,
      dropsPerMember: c.dropsPerMember,
      changedByVote: c.changedByVote,
      meanVoteMargin: c.ensembleSteps > 0 ? c.marginSum / c.ensembleSteps : 0,
      memberRuns: c.memberRuns,
      memberMs: c.memberMs,
      fusedRuns: c.fusedRuns,
      overturnedFused: c.overturnedFused,
      uncertaintyMs,
    };
  }
}

/**
 * The members' logits [drops.length * vocab]: `last` (the token the cache ends with, at position
 * runner.position - 1) again, one row per member, in one run. Row s sees every cached position
 * but the prompt positions `drops[s]` and the base pass's own entry of `last` (it has its own),
 * and of the new rows only itself. The caches are left as they were.
 *
 * With `next` (runner.canAppendRows): one more row, the next base pass: `next` at
 * runner.position over the whole cache, cached (it alone) and its logits appended [vocab].
 */
export function memberLogits(runner: PlanRunner, last: number, drops: readonly (readonly number[])[], signal?: AbortSignal, next?: number): Promise<Float32Array> {
  const K = drops.length;
  const position = runner.position - 1;
  for (const d of drops) for (const p of d) if (!(Number.isInteger(p) && p >= 0 && p < position)) throw new WhittleError('INTERNAL', `a member can drop cached positions 0..${position - 1}, not ${p}`);
  const S = next === undefined ? K : K + 1;
  return runner.rows(
    next === undefined ? new Array<number>(K).fill(last) : [...new Array<number>(K).fill(last), next],
    {
      positions: next === undefined ? new Array<number>(K).fill(position) : [...new Array<number>(K).fill(position), position + 1],
      logitRows: Array.from({ length: S }, (_, s) => s),
      append: next !== undefined,
      ...(next === undefined ? {} : { appendFrom: K }),
      mask: (s, row, P, slots) => {
        if (s === K) {
          row.fill(MASKED_SCORE, P, slots + K); // the base row: the whole cache, then only itself
          return;
        }
        row.fill(MASKED_SCORE, P - 1, slots + S); // base entry of `last`, unfilled slots, every new row...
        row[slots + s] = 0; // ...but its own
        for (const p of drops[s]!) row[p] = MASKED_SCORE;
      },
    },
    signal,
  );
}


/** A generation's dropout state the engine reads after the loop (stats). */
export interface DropoutRun {
  ensemble: DropoutEnsemble | null;
  uncertaintyMs: number;
}

/**
 * Prefill with the marked rows, then one token per step through the ensemble. `run` receives the
 * ensemble once the prefill made it (for the stats). Returns (done) when the context is full.
 */
export async function* dropoutTokens(
  runner: PlanRunner,
  prompt: number[],
  history: readonly number[],
  sampling: SamplingOptions,
  setup: DropoutSetup,
  run: DropoutRun,
  maxSeqLen: number,
  signal: AbortSignal,
  onPrefill: () => void,
): AsyncGenerator<Produced, void, undefined> {
  const prefilled = await prefillUncertainty(runner, prompt, setup.positions, setup.topK, signal);
  run.uncertaintyMs = prefilled.transfer.extraMs;
  let logits = prefilled.logits;
  const ensemble = new DropoutEnsemble(runner, setup, prefilled.uncertainty, sampling);
  run.ensemble = ensemble;
  onPrefill();
  let last = prompt[prompt.length - 1]!;
  for (;;) {
    const step = await ensemble.step(logits, last, history, signal, undefined, true);
    yield step.ran ? { token: step.token, dropout: { base: step.base, votes: step.votes, dropped: step.dropped } } : { token: step.token };
    // A fused step already cached the token (and may have filled the context).
    if (runner.position >= maxSeqLen && !step.next) return;
    last = step.token;
    logits = step.next ?? (await runner.step([last], { signal }));
  }
}
