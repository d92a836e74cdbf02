/**
 * The engine's exit calibration glue: profiles the compiled plan's exits on calibration text
 * (exit-calibration.ts, through the ONNX probe segments compiled from the engine's prepared
 * weights and released after), measures what a run of the compiled plan costs on this backend,
 * and caches both (the profile depends only on the weights, the kept layers, the temperature and
 * the text; the cost on the compiled plan).
 *
 * @example
 * const calibrator = new ExitCalibrator({ ort, backend, weights: prepared, attention });
 * const profile = await calibrator.profile(plan.layers, tokens, 1, 'default', signal);
 * const cost = await calibrator.stepCost(runner, signal); // with the runner claimed
 * const choice = chooseExit(profile, { stepCost: cost });
 */
import { Checkpoint } from './checkpoint.ts';
import { profileExits, type ExitChoice, type ExitProfile, type StepCost } from './exit-calibration.ts';
import { ProbeRunner, type ProbeSource } from './probe-runner.ts';
import type { PlanRunner } from './runner.ts';
import type { LlamaConfig } from '../../models/llama/types.ts';

export interface CalibrateExitsOptions {
  /** Profile for greedy decoding (top-1 agreement) or sampling at `temperature`. Default greedy. */
  greedy?: boolean;
  temperature?: number;
  /** Rank exits for this fixed draft length instead of the best per exit. */
  draft?: number;
  /** Calibration text (BOS prepended) or token ids; default: the built-in text. First 128 tokens are used. */
  calibration?: string | readonly number[];
  /** Stops within one forward pass; the call then rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

export interface ExitCalibration {
  profile: ExitProfile;
  choice: ExitChoice;
  stepCost: StepCost;
}

/** Calibration tokens a profile reads: enough for stable rates, short enough to take well under a second. */
const PROFILE_TOKENS = 128;

export class ExitCalibrator {
  /** Per kept-layer list, temperature and calibration text. */
  private readonly profiles = new Map<string, ExitProfile>();
  /** Per compiled plan. */
  private readonly stepCosts = new Map<string, StepCost>();

  constructor(private readonly config: LlamaConfig) {}

  /** A profile already measured for these layers, temperature and text. */
  cachedProfile(layers: readonly number[], temperature: number, textKey: string): ExitProfile | undefined {
    return this.profiles.get(`${layers.join(',')}|${temperature}|${textKey}`);
  }

  /**
   * The exit profile of `layers` over the first PROFILE_TOKENS of `tokens`; `textKey` names the
   * calibration text for the cache. Stops before any compile or run of a probe segment once
   * `signal` fires (ABORTED), releasing what it compiled.
   */
  async profile(source: ProbeSource, layers: readonly number[], tokens: readonly number[], temperature: number, textKey: string, signal?: AbortSignal): Promise<ExitProfile> {
    const key = `${layers.join(',')}|${temperature}|${textKey}`;
    const cached = this.profiles.get(key);
    if (cached) return cached;
    const probe = new ProbeRunner(source, signal);
    const profile = await profileExits(probe, this.config, layers, tokens.slice(0, PROFILE_TOKENS), { temperature });
    this.profiles.set(key, profile);
    return profile;
  }

  /** The cached step cost of `plan`, if measured. */
  cachedStepCost(plan: object): StepCost | undefined {
    return this.stepCosts.get(JSON.stringify(plan));
  }

  /**
   * Fixed and per-position cost of one run of the compiled plan's full path, from the best of a
   * few one- and five-position steps: t(S) = fixed + perPosition * S, with `fixed` per
   * session.run (a plan split at an exit runs two per step). Needs the runner claimed (its caches
   * are reset between runs). Cached per plan.
   */
  async stepCost(runner: PlanRunner, signal?: AbortSignal): Promise<StepCost> {
    const key = JSON.stringify(runner.plan);
    const cached = this.stepCosts.get(key);
    if (cached) return cached;
    const c = this.config;
    const checkpoint = new Checkpoint(signal);
    const ids = [c.bosTokenId, ...Array.from({ length: 4 }, (_, i) => (c.bosTokenId + 3 + i) % c.vocabSize)];
    let one = Infinity;
    let five = Infinity;
    let plain = Infinity;
    for (let i = 0; i < 5; i++) {
      await checkpoint.pass();
      // Drafts and verification run on the graphs, so F and P are the graphs' even where the
      // decode kernels take plain steps; those are measured apart, as the baseline.
      runner.reset();
      let t = performance.now();
      await runner.step(ids.slice(0, 1), { graphs: true });
      one = Math.min(one, performance.now() - t);
      runner.reset();
      t = performance.now();
      await runner.step(ids, { graphs: true });
      five = Math.min(five, performance.now() - t);
      if (runner.decodePath === 'kernel') {
        runner.reset();
        await runner.step(ids.slice(0, 4), { graphs: true });
        t = performance.now();
        await runner.step(ids.slice(4));
        plain = Math.min(plain, performance.now() - t);
      }
    }
    const perPosition = Math.max(1e-6, (five - one) / 4);
    const cost: StepCost = { fixed: Math.max(0, one - perPosition) / runner.runsPerStep, perPosition, ...(Number.isFinite(plain) ? { baseline: plain } : {}) };
    this.stepCosts.set(key, cost);
    return cost;
  }
}
