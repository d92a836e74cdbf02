/**
 * Choosing the early exit for self-speculative decoding from a short calibration pass through
 * the compiled ONNX probe segments (probe-runner.ts): the plan's kept blocks one graph each, and
 * after every kept block e the shared final norm + LM head (one head graph: LayerSkip exits share
 * it) give the exit's distribution, compared with the last block's at the same position:
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
 * The independent oracle for the rates is models/reference/scoring-ref.ts `exitRates` (tests).
 *
 * @example
 * const profile = await profileExits(new ProbeRunner(source, signal), config, plan.layers, calibrationTokens);
 * const { exit, draft, speedup } = chooseExit(profile);
 */
import { WhittleError } from '../../core/errors.ts';
import { bestDraft } from './draft-length.ts';
import type { ProbeRunner } from './probe-runner.ts';
import { argmax, softmax } from './sampler.ts';
import { headSizeOf, type LlamaConfig } from '../../models/llama/types.ts';

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
  const hs = headSizeOf(c);
  const block = c.dim * (c.nHeads + 2 * c.nKvHeads) * hs + c.nHeads * hs * c.dim + 3 * c.dim * c.hiddenDim;
  return { block, head: c.dim * c.vocabSize };
}

/** The full model's side of the comparison for `count` positions: argmax and distribution at `temperature` per row. */
interface FinalRows {
  top: number[]; // [count]
  probs: Float64Array[]; // count x [vocab]
}

function finalRows(logits: Float32Array, vocab: number, temperature: number): FinalRows {
  const top: number[] = [];
  const probs: Float64Array[] = [];
  for (let r = 0; r < logits.length / vocab; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    top.push(argmax(row));
    probs.push(softmax(row, temperature));
  }
  return { top, probs };
}

/** Adds exit i's agreement and acceptance over the rows of `logits` [count, vocab] into the per-exit sums. */
function addExitRates(sums: { agree: Float64Array; accept: Float64Array }, i: number, logits: Float32Array, final: FinalRows, vocab: number, temperature: number): void {
  final.top.forEach((top, r) => {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    if (argmax(row) === top) sums.agree[i]!++;
    const p = softmax(row, temperature);
    const pFinal = final.probs[r]!;
    let overlap = 0;
    for (let v = 0; v < vocab; v++) overlap += Math.min(p[v]!, pFinal[v]!);
    sums.accept[i] = sums.accept[i]! + overlap;
  });
}

/**
 * Per-exit agreement and acceptance of the kept `layers` on `tokens` (one window, cut to the
 * context): one prefill through each kept block's probe graph (hidden states kept on the host,
 * [n, S, dim]), then the head graph over the last block's positions and every exit's, a chunk of
 * positions at a time so at most two chunks of logits are alive. Stops at the probe's
 * checkpoints (before every compile and run) when its signal fires.
 */
export async function profileExits(probe: ProbeRunner, config: LlamaConfig, layers: readonly number[], tokens: readonly number[], options: { temperature?: number } = {}): Promise<ExitProfile> {
  const t0 = performance.now();
  const c = config;
  const n = layers.length;
  if (n < 2) throw new WhittleError('INVALID_ARGUMENT', 'an early exit needs a plan with at least two layers');
  if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no calibration tokens');
  const temperature = options.temperature && options.temperature > 0 ? options.temperature : 1;
  const window = tokens.slice(0, c.maxSeqLen);
  const S = window.length;
  const hidden: Float32Array[] = []; // n x [S, dim]: the residual stream after kept block i
  let h = probe.embed(window);
  for (const layer of layers) {
    const input = h;
    h = await probe.block(layer, (run) => run(input));
    hidden.push(h);
  }
  const sums = { agree: new Float64Array(n), accept: new Float64Array(n) }; // [n] each
  await probe.head(async (run) => {
    for (let from = 0; from < S; from += probe.headPositions) {
      const count = Math.min(probe.headPositions, S - from);
      const finalLogits = await run(hidden[n - 1]!, from, count); // [count, vocab]
      const final = finalRows(finalLogits, c.vocabSize, temperature);
      // The last exit is the final head itself (agreement 1, acceptance 1 up to rounding): compared like the others.
      for (let i = 0; i < n; i++) addExitRates(sums, i, i === n - 1 ? finalLogits : await run(hidden[i]!, from, count), final, c.vocabSize, temperature);
    }
  });
  const { block, head } = costs(c);
  return {
    layers: [...layers],
    positions: S,
    agreement: Array.from(sums.agree, (s) => s / S),
    acceptance: Array.from(sums.accept, (s) => s / S),
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
  /**
   * A plain decode step's cost when it is not the graphs' F + P (WASM int8 models decode on
   * Whittle's kernels, ~2x faster, while drafts and verification stay on the graphs): what
   * speculation has to beat. Absent: F + P.
   */
  baseline?: number;
}

export function chooseExit(profile: ExitProfile, options: ExitChoiceOptions = {}): ExitChoice {
  const n = profile.layers.length;
  const rates = (options.greedy ?? true) ? profile.agreement : profile.acceptance;
  const { fixed: F, perPosition: P } = options.stepCost ?? { fixed: 1.2, perPosition: 1 };
  const full = options.stepCost?.baseline ?? F + P;
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
