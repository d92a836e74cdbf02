/**
 * Choosing the early exit for self-speculative decoding from a short calibration pass. Pure
 * TypeScript over the loaded weights (the reference block from scoring.ts), no onnxruntime.
 *
 * One forward pass over the calibration tokens through the plan's kept layers; after every kept
 * block e the shared final norm + LM head give the exit's distribution, compared with the last
 * block's at the same position:
 * - agreement[e]: how often the exit's argmax equals the full model's (greedy acceptance rate);
 * - acceptance[e]: mean of sum_x min(p_e(x), p_L(x)) at the sampling temperature (the expected
 *   acceptance of one sampled draft under speculative sampling's rule).
 * Then `chooseExit` takes the exit (and draft length) with the best expected speed-up under a
 * cost model with a fixed part F per run (onnxruntime's run, feeds, embedding) and a part P per
 * position that scales with the FLOPs a run covers: a full step costs F + P, a draft step
 * F + P * draftCost[e] (e blocks + head over all blocks + head), verifying S positions
 * F + P * S * verifyCost[e] (the blocks after e + head). The engine measures F and P on the
 * compiled plan (one- and five-position steps) before choosing, so the prediction reflects this
 * backend: on a CPU extra positions cost nearly as much as the first, on a GPU almost nothing.
 *
 * @example
 * const profile = profileExits(config, weights, plan.layers, calibrationTokens);
 * const { exit, draft, speedup } = chooseExit(profile);
 */
import { WhittleError } from '../../core/errors.ts';
import { matvec, rmsnorm } from '../../models/reference/llama-ref.ts';
import { bestDraft } from './draft-length.ts';
import { argmax, softmax } from './sampler.ts';
import { applyBlock } from '../../models/llama/scoring.ts';
import type { LlamaConfig, LlamaWeights } from '../../models/llama/types.ts';

export interface ExitProfile {
  /** Kept layers the profile was taken over (the plan's `layers`); exits index into them. */
  layers: number[];
  positions: number;
  /** [layers.length] top-1 agreement of the exit after kept block e (index e - 1) with the last one. */
  agreement: number[];
  /** [layers.length] mean sum_x min(p_e(x), p_L(x)) at `temperature`. */
  acceptance: number[];
  /** [layers.length] FLOPs of a step through the first e kept blocks + head, relative to all + head. */
  draftCost: number[];
  /** [layers.length] FLOPs of one position through the blocks after e + head, relative to all + head. */
  verifyCost: number[];
  temperature: number;
  ms: number;
}

/** Multiply-adds of one block and of the head, per position (attention over the context ignored). */
function costs(c: LlamaConfig): { block: number; head: number } {
  const hs = c.dim / c.nHeads;
  const block = c.dim * (c.nHeads + 2 * c.nKvHeads) * hs + c.nHeads * hs * c.dim + 3 * c.dim * c.hiddenDim;
  return { block, head: c.dim * c.vocabSize };
}

/** Per-exit agreement and acceptance on `tokens` (one window, cut to the context). */
export function profileExits(config: LlamaConfig, weights: LlamaWeights, layers: readonly number[], tokens: readonly number[], options: { temperature?: number } = {}): ExitProfile {
  const t0 = performance.now();
  const c = config;
  const n = layers.length;
  if (n < 2) throw new WhittleError('INVALID_ARGUMENT', 'an early exit needs a plan with at least two layers');
  if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no calibration tokens');
  const temperature = options.temperature && options.temperature > 0 ? options.temperature : 1;
  const window = tokens.slice(0, c.maxSeqLen);
  const kvDim = (c.nKvHeads * c.dim) / c.nHeads;
  const keyCache = layers.map(() => new Float32Array(window.length * kvDim)); // n x [T, kvDim]
  const valueCache = layers.map(() => new Float32Array(window.length * kvDim));
  const agree = new Float64Array(n); // [n]
  const accept = new Float64Array(n); // [n]
  const logits: Float32Array[] = new Array<Float32Array>(n);
  for (let pos = 0; pos < window.length; pos++) {
    const token = window[pos]!;
    if (!Number.isInteger(token) || token < 0 || token >= c.vocabSize) throw new WhittleError('INVALID_ARGUMENT', `calibration token ${token} is outside the vocabulary (${c.vocabSize})`);
    const x = weights.tokenEmbedding.slice(token * c.dim, (token + 1) * c.dim); // [dim]
    for (let i = 0; i < n; i++) {
      applyBlock(c, weights.layers[layers[i]!]!, x, pos, keyCache[i]!, valueCache[i]!);
      logits[i] = matvec(weights.lmHead, rmsnorm(x, weights.finalNorm, c.normEps), c.vocabSize); // [vocab]
    }
    const finalTop = argmax(logits[n - 1]!);
    const pFinal = softmax(logits[n - 1]!, temperature);
    for (let i = 0; i < n; i++) {
      if (argmax(logits[i]!) === finalTop) agree[i]!++;
      const p = softmax(logits[i]!, temperature);
      let overlap = 0;
      for (let v = 0; v < p.length; v++) overlap += Math.min(p[v]!, pFinal[v]!);
      accept[i] = accept[i]! + overlap;
    }
  }
  const { block, head } = costs(c);
  return {
    layers: [...layers],
    positions: window.length,
    agreement: Array.from(agree, (s) => s / window.length),
    acceptance: Array.from(accept, (s) => s / window.length),
    draftCost: Array.from({ length: n }, (_, i) => ((i + 1) * block + head) / (n * block + head)),
    verifyCost: Array.from({ length: n }, (_, i) => ((n - i - 1) * block + head) / (n * block + head)),
    temperature,
    ms: performance.now() - t0,
  };
}

export interface ExitChoice {
  /** Exit after this many kept blocks (a plan's `exit`). */
  exit: number;
  /** Draft length with the best expected speed-up at that exit (or the one asked for). */
  draft: number;
  /** Expected speed-up over plain decoding under the cost model (may be below 1). */
  speedup: number;
  /** [layers.length - 1] best expected speed-up per exit 1..n-1. */
  speedups: number[];
}

export interface ExitChoiceOptions {
  /** Greedy (use `agreement`) or sampling (use `acceptance`). Default true. */
  greedy?: boolean;
  /** A fixed draft length; default: the best of 1..maxDraft per exit. */
  draft?: number;
  maxDraft?: number;
  /**
   * Measured cost of a run: fixed per run and per position of a full-depth step (ms, or any unit:
   * only their ratio matters). Default { fixed: 1.2, perPosition: 1 }, what WASM measured for the
   * 2.4M-parameter recipe model in Node.
   */
  stepCost?: StepCost;
}

export interface StepCost {
  fixed: number;
  perPosition: number;
}

export function chooseExit(profile: ExitProfile, options: ExitChoiceOptions = {}): ExitChoice {
  const n = profile.layers.length;
  const rates = (options.greedy ?? true) ? profile.agreement : profile.acceptance;
  const { fixed: F, perPosition: P } = options.stepCost ?? { fixed: 1.2, perPosition: 1 };
  const full = F + P;
  const drafts = options.draft !== undefined ? [options.draft] : Array.from({ length: options.maxDraft ?? 8 }, (_, i) => i + 1);
  let best: Omit<ExitChoice, 'speedups'> = { exit: 1, draft: drafts[0]!, speedup: -Infinity };
  const speedups: number[] = [];
  for (let e = 1; e < n; e++) {
    const a = Math.min(rates[e - 1]!, 0.999);
    const draftStep = (F + P * profile.draftCost[e - 1]!) / full;
    const v = profile.verifyCost[e - 1]!;
    const here = bestDraft(a, drafts, draftStep, (S) => (F + P * S * v) / full);
    if (here.speedup > best.speedup) best = { exit: e, ...here };
    speedups.push(here.speedup);
  }
  return { ...best, speedups };
}
