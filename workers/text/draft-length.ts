/**
 * Draft length for self-speculative decoding, fixed or adaptive. Plain arithmetic, no model.
 *
 * A round drafts d tokens (d + 1 one-token runs of the layers before the exit: the last one only
 * feeds the final draft), then verifies them in one run of the later layers over d + 1 positions.
 * With a per-token acceptance rate a, a round yields on average
 *     tokens(d) = 1 + a + ... + a^d = (1 - a^(d+1)) / (1 - a)
 * (accepted drafts plus the verifier's own token), so the speed-up over plain decoding is
 *     speedup(d) = tokens(d) * fullStep / ((d + 1) * draftStep + verify(d + 1))
 * (Leviathan et al. 2023, eq. 1, with the verify cost measured instead of assumed constant).
 *
 * `AdaptiveDraft` estimates a, the draft step time and the verify time as a function of the
 * positions it covers, from the rounds so far (exponentially forgotten, so it follows text that
 * gets easier or harder), and picks the d that maximizes tokens per millisecond. The verify time
 * is fitted as `fixed + perPosition * S` by weighted least squares over the observed rounds:
 * on a CPU the later layers cost more per extra position, on a GPU almost nothing.
 */

/** Expected tokens per round with acceptance rate `a` and `d` drafts. */
export function expectedTokensPerRound(a: number, d: number): number {
  if (a >= 1) return d + 1;
  return (1 - a ** (d + 1)) / (1 - a);
}

/**
 * Expected speed-up over plain decoding when a draft step costs `draftCost` and verifying S
 * positions costs `verifyCost(S)`, both in units of one full-depth step.
 */
export function expectedSpeedup(a: number, d: number, draftCost: number, verifyCost: (positions: number) => number): number {
  return expectedTokensPerRound(a, d) / ((d + 1) * draftCost + verifyCost(d + 1));
}

/**
 * The draft length among `drafts` with the best `expectedSpeedup` (the shorter one when two are
 * equal within rounding), and that speed-up.
 */
export function bestDraft(a: number, drafts: readonly number[], draftCost: number, verifyCost: (positions: number) => number): { draft: number; speedup: number } {
  let best = { draft: drafts[0]!, speedup: -Infinity };
  for (const d of drafts) {
    const speedup = expectedSpeedup(a, d, draftCost, verifyCost);
    if (speedup > best.speedup + 1e-12) best = { draft: d, speedup };
  }
  return best;
}

export interface RoundObservation {
  drafted: number;
  accepted: number;
  /** Wall time of the round's d + 1 draft steps. */
  draftMs: number;
  /** Wall time of the verify run (plus cache truncation): the rest of the round. */
  verifyMs: number;
}

export interface AdaptiveDraftOptions {
  min?: number;
  max?: number;
  /** Draft length of the first round, before anything was measured. Default 3. */
  start?: number;
  /** Weight each past round keeps per new round (exponential forgetting). Default 0.97 (a memory of ~30 rounds). */
  decay?: number;
}

export class AdaptiveDraft {
  readonly min: number;
  readonly max: number;
  private readonly decay: number;
  private d: number;
  // Exponentially weighted Bernoulli counts for the per-draft acceptance rate. A round whose
  // drafts were cut at the first rejection tested accepted + 1 drafts (the ones after it were
  // never judged), or d when all passed. Prior: 2 trials, 1 success (a = 0.5).
  private trials = 2;
  private successes = 1;
  private draftSteps = 0;
  private draftMs = 0;
  // Weighted least squares of verify ms on positions S: sums of w, wS, wS^2, wY, wSY.
  private w = 0;
  private ws = 0;
  private wss = 0;
  private wy = 0;
  private wsy = 0;
  /** Draft lengths chosen, one per round (for stats). */
  readonly history: number[] = [];

  constructor(options: AdaptiveDraftOptions = {}) {
    this.min = options.min ?? 1;
    this.max = options.max ?? 8;
    this.decay = options.decay ?? 0.97;
    this.d = Math.min(this.max, Math.max(this.min, options.start ?? 3));
  }

  /** The draft length for the next round. */
  get next(): number {
    return this.d;
  }

  /** Acceptance rate estimate. */
  get acceptance(): number {
    return this.successes / this.trials;
  }

  observe(round: RoundObservation): void {
    const k = this.decay;
    const d = round.drafted;
    this.history.push(d);
    this.trials = k * this.trials + Math.min(d, round.accepted + 1);
    this.successes = k * this.successes + round.accepted;
    this.draftSteps = k * this.draftSteps + (d + 1);
    this.draftMs = k * this.draftMs + round.draftMs;
    const S = d + 1;
    this.w = k * this.w + 1;
    this.ws = k * this.ws + S;
    this.wss = k * this.wss + S * S;
    this.wy = k * this.wy + round.verifyMs;
    this.wsy = k * this.wsy + S * round.verifyMs;
    this.d = this.best();
  }

  /** verify ms ~ fixed + perPosition * S; with one S seen so far, assume half of it is per position. */
  private verifyModel(): { fixed: number; perPosition: number } {
    const meanS = this.ws / this.w;
    const meanY = this.wy / this.w;
    const varS = this.wss / this.w - meanS * meanS;
    if (varS > 1e-6) {
      const slope = (this.wsy / this.w - meanS * meanY) / varS;
      const perPosition = Math.max(0, slope);
      return { fixed: Math.max(0, meanY - perPosition * meanS), perPosition };
    }
    return { fixed: meanY / 2, perPosition: meanY / 2 / meanS };
  }

  private best(): number {
    const a = Math.min(this.acceptance, 0.999);
    const { fixed, perPosition } = this.verifyModel();
    const lengths = Array.from({ length: this.max - this.min + 1 }, (_, i) => this.min + i);
    // Costs in ms: the rate is tokens per ms, maximized like a speed-up.
    const best = bestDraft(a, lengths, this.draftMs / this.draftSteps, (S) => fixed + perPosition * S).draft;
    // Move one step at a time: the verify fit is only trustworthy near the lengths observed.
    return Math.max(this.d - 1, Math.min(this.d + 1, best));
  }
}
