/**
 * The text generation engine: a plain class, no worker or comlink code, no DOM or Node imports.
 * A worker wraps it in a few lines (`Comlink.expose(...)`); tests and the CLI call it directly.
 *
 * It holds the prepared weights (so `setPlan` recompiles without re-reading any file), one
 * compiled plan (sessions + KV caches, see runner.ts) and the tokenizer.
 *
 * @example
 * const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
 * const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin, tok));
 * for await (const ev of engine.generate('Once upon a time', { maxTokens: 32 })) {
 *   if (ev.type === 'token') write(ev.text); else console.log(ev.stats);
 * }
 * await engine.setPlan({ layers: [0, 1, 3, 4] }); // drop block 2, same weights
 */
import { WhittleError, asWhittleError, throwIfAborted } from '../../core/errors.ts';
import { gqaSupported, type AttentionKind } from '../../models/llama/graph.ts';
import { validatePlan } from '../../models/llama/plan.ts';
import { prepareWeights, type PreparedWeights } from '../../models/llama/prepare.ts';
import { fullPlan, type LlamaConfig, type LlamaPlan } from '../../models/llama/types.ts';
import type { Backend, OrtModule } from '../ort/runtime.ts';
import type { TextModel } from './model.ts';
import { PlanRunner } from './runner.ts';
import { acceptDraft, createRng, drawFrom, isGreedy, residualDistribution, sample, tokenDistribution, type Rng, type SamplingOptions } from './sampler.ts';
import type { TextTokenizer } from './tokenizer.ts';
import { AdaptiveDraft } from './draft-length.ts';
import { chooseExit, profileExits, type ExitChoice, type ExitProfile, type StepCost } from './exit-calibration.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import type { LlamaWeights } from '../../models/llama/types.ts';
import type { ChatMessage, ChatTemplate } from './chat.ts';

export interface TextEngineOptions {
  /** Plan to compile first; default: every layer, no exit. */
  plan?: LlamaPlan;
  /**
   * Attention implementation (models/llama/graph.ts). Default 'auto': on WASM 'onnx' (opset-23
   * Attention, one node, any head size; fastest in Node, see models/llama/README.md); on WebGPU
   * 'gqa' (com.microsoft GroupQueryAttention, which has WebGPU kernels) when the head size is a
   * multiple of 8, else 'plain' opset-21 ops, since the opset-23 op is not known to have one there.
   */
  attention?: AttentionKind | 'auto';
}

export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens to generate. Default 128. */
  maxTokens?: number;
  /** Token ids that end generation (not emitted). Default: the model's EOS. */
  stopTokens?: number[];
  /** Strings that end generation; the text is cut before them (not emitted). */
  stopStrings?: string[];
  /** Prepend the model's BOS token to the prompt. Default true. */
  addBos?: boolean;
  /** Decode through the plan's early exit (drafts' path) instead of every kept layer. */
  exit?: boolean;
  /** Stops within one step (between segment runs); the iterator then throws WhittleError('ABORTED'). */
  signal?: AbortSignal;
  /**
   * Self-speculative decoding (LayerSkip): draft tokens through an early exit, verify them in one
   * pass of the later layers over the drafts' exit hidden states. Greedy output is exactly the
   * full-depth greedy output; sampled output follows the full-depth distribution (speculative
   * sampling's rejection rule). See `SpeculateOptions`.
   */
  speculate?: SpeculateOptions;
}

export interface SpeculateOptions {
  /**
   * Exit after this many kept layers (recompiles the plan with that exit if it differs). Default:
   * the plan's exit, or 'auto' when it has none: a short calibration pass picks the exit with the
   * best expected speed-up (exit-calibration.ts), once per plan and sampling mode.
   */
  exit?: number | 'auto';
  /** Drafts per round; 'auto' (default) adapts it every round to the measured acceptance and step costs (draft-length.ts). */
  draft?: number | 'auto';
}

export interface SpeculationStats {
  exit: number;
  /** What was asked for: a fixed length or 'auto'. */
  draft: number | 'auto';
  /** Mean drafts per round (equals `draft` when fixed). */
  meanDraft: number;
  rounds: number;
  drafted: number;
  accepted: number;
  /** accepted / drafted. */
  acceptance: number;
  /** Tokens each round produced on average (accepted drafts + the verifier's token). */
  tokensPerRound: number;
  /** Time spent drafting and verifying (incl. cache truncation), ms. */
  draftMs: number;
  verifyMs: number;
  /** When the exit was chosen by calibration: its expected speed-up under the cost model. */
  calibration?: { predictedSpeedup: number; ms: number };
}

export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  /** Wall time of the prompt pass. */
  prefillMs: number;
  prefillTokensPerSecond: number;
  /** Wall time of the one-token steps after the first generated token. */
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** From the generate() call to the first token event. */
  timeToFirstTokenMs: number;
  stopReason: 'stop-token' | 'stop-string' | 'max-tokens' | 'context';
  plan: LlamaPlan;
  attention: AttentionKind;
  /** With `speculate`: drafts proposed and accepted, rounds, timing. */
  speculation?: SpeculationStats;
}

type TokenPicker = (logits: Float32Array, history: readonly number[]) => number;

/** A token from a token source, with where it came from when speculating. */
interface Produced {
  token: number;
  /** 'draft': an accepted draft; 'verifier': the full model's own token. Absent without speculation. */
  origin?: 'draft' | 'verifier';
  /** Drafts the verifier rejected just before this token (shown struck out by a demo). */
  rejected?: number[];
}

/**
 * One token at a time through the whole plan (or its exit path). Returns (done) when the context
 * is full. `history` is the caller's: it already holds every token this yielded.
 */
async function* plainTokens(runner: PlanRunner, prompt: number[], history: readonly number[], pick: TokenPicker, maxSeqLen: number, step: { exit?: boolean; signal: AbortSignal }, onPrefill: () => void): AsyncGenerator<Produced, void, undefined> {
  let logits = await runner.step(prompt, step);
  onPrefill();
  for (;;) {
    const token = pick(logits, history);
    yield { token };
    if (runner.position >= maxSeqLen) return;
    logits = await runner.step([token], step);
  }
}

/** Row `row` of a [rows, vocab] logits matrix (a view). */
function rowLogits(all: Float32Array, row: number, vocab: number): Float32Array {
  return all.subarray(row * vocab, (row + 1) * vocab);
}

/** Running totals of a speculative generation (what SpeculationStats reports). */
interface SpecCounters {
  rounds: number;
  drafted: number;
  accepted: number;
  produced: number;
  draftMs: number;
  verifyMs: number;
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
async function* speculativeTokens(
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

/** Text (BOS is prepended), token ids (used as given), or a conversation for the model's chat template. */
export type Prompt = string | readonly number[] | readonly ChatMessage[];

export type TextEvent =
  | {
      type: 'token';
      token: number;
      text: string;
      /** With `speculate`: 'draft' for an accepted draft, 'verifier' for the full model's own token. */
      origin?: 'draft' | 'verifier';
      /** With `speculate`: drafts the verifier rejected right before this token, and their text. */
      rejected?: { tokens: number[]; text: string };
    }
  | { type: 'done'; tokens: number[]; text: string; stats: GenerateStats };

/** Longest suffix of `text` that is a proper prefix of some stop string (held back while streaming). */
function heldBack(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

export class TextEngine {
  private runner: PlanRunner | null = null;
  private busy = false;
  /** Aborts the generation in flight (`abort()`); linked to the caller's signal. */
  private current: AbortController | null = null;
  private readonly prepared: PreparedWeights;
  /** Exit calibrations, per kept-layer list and sampling mode (they only depend on the weights). */
  private readonly exitProfiles = new Map<string, ExitProfile>();
  /** When `generate` recompiled the plan with another exit to speculate: the caller's plan, restored for the next plain generation. */
  private planBeforeSpeculation: LlamaPlan | null = null;
  /** Measured run costs, per plan (measureStepCost). */
  private readonly stepCosts = new Map<string, StepCost>();
  /**
   * The weights as loaded (row-major, untransposed), besides the engine's prepared copy: what
   * depth-pruning scores and exit calibration read (plain TypeScript over typed arrays).
   */
  readonly weights: LlamaWeights;
  /** The model's chat template, when it has one: `generate` then accepts a list of messages. */
  readonly chatTemplate: ChatTemplate | undefined;
  readonly attention: AttentionKind;
  readonly config: LlamaConfig;
  readonly tokenizer: TextTokenizer;

  /**
   * Prepares weights (transposes, fuses) synchronously; call `setPlan` (or use `create`) before
   * generating. The engine keeps `model.weights` too (pruning scores and exit calibration read
   * them), so a model sits in memory twice: fine at the few-million-parameter sizes the
   * TypeScript scoring can handle anyway.
   */
  constructor(
    private readonly ort: OrtModule,
    private readonly backend: Backend,
    model: TextModel,
    options: Pick<TextEngineOptions, 'attention'> = {},
  ) {
    this.config = model.config;
    this.tokenizer = model.tokenizer;
    this.weights = model.weights;
    this.chatTemplate = model.chatTemplate;
    this.prepared = prepareWeights(model.config, model.weights);
    const wanted = options.attention ?? 'auto';
    const hs = this.prepared.headSize;
    if (wanted === 'gqa' && !gqaSupported(hs)) throw new WhittleError('UNSUPPORTED', `GroupQueryAttention needs a head size divisible by 8 (this model: ${hs})`);
    this.attention = wanted !== 'auto' ? wanted : backend === 'wasm' ? 'onnx' : gqaSupported(hs) ? 'gqa' : 'plain';
  }

  /** Constructor + first `setPlan`. */
  static async create(ort: OrtModule, backend: Backend, model: TextModel, options: TextEngineOptions = {}): Promise<TextEngine> {
    const engine = new TextEngine(ort, backend, model, options);
    await engine.setPlan(options.plan);
    return engine;
  }

  /** The compiled plan. */
  get plan(): LlamaPlan {
    return this.requireRunner().plan;
  }

  /** Graph nodes per compiled segment. */
  get nodeCounts(): number[] {
    return this.requireRunner().nodeCounts;
  }

  /** Compiles `plan` (default: full depth) from the weights already in memory and swaps it in. */
  async setPlan(plan: LlamaPlan = fullPlan(this.config)): Promise<void> {
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'cannot change the plan while generating');
    this.planBeforeSpeculation = null; // a plan the caller chose (generate sets it after its own switch)
    validatePlan(plan, this.config.nLayers);
    this.busy = true;
    try {
      const next = await PlanRunner.compile(this.ort, this.backend, this.prepared, { layers: [...plan.layers], exit: plan.exit }, this.attention);
      const old = this.runner;
      this.runner = next;
      await old?.release();
    } finally {
      this.busy = false;
    }
  }

  /**
   * Logits [vocab] after feeding `tokens` from position 0 (a fresh cache) in one prefill pass.
   * For tests and scoring; generation uses `generate`.
   */
  async logits(tokens: readonly number[], options: { exit?: boolean } = {}): Promise<Float32Array> {
    this.checkExit(options.exit);
    return this.withRunner((runner) => runner.step(tokens, options));
  }

  /** Calibration/scoring input: text gets BOS and is encoded; token ids are used as given. */
  tokenIds(text: string | readonly number[]): number[] {
    return typeof text === 'string' ? [this.config.bosTokenId, ...this.tokenizer.encode(text)] : [...text];
  }

  /**
   * Teacher-forced perplexity of `text` (BOS prepended) or token ids under the compiled plan (its
   * full path, not the exit): exp(mean -log p(token[t+1] | tokens[..t])), fed one token per step so
   * it runs the same graphs generation does. What a pruned plan costs in quality.
   */
  async perplexity(text: string | readonly number[], options: { signal?: AbortSignal } = {}): Promise<{ perplexity: number; predictions: number }> {
    const ids = this.tokenIds(text);
    if (ids.length < 2) throw new WhittleError('INVALID_ARGUMENT', 'perplexity needs at least 2 tokens');
    // The last token is only predicted, never fed: ids.length - 1 positions run.
    if (ids.length - 1 > this.config.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `${ids.length} tokens exceed the model's context of ${this.config.maxSeqLen} (+1)`);
    return this.withRunner(async (runner) => {
      let nll = 0;
      for (let t = 0; t + 1 < ids.length; t++) {
        throwIfAborted(options.signal);
        const logits = await runner.step([ids[t]!]);
        let max = -Infinity;
        for (const v of logits) max = Math.max(max, v);
        let sum = 0;
        for (const v of logits) sum += Math.exp(v - max);
        nll -= logits[ids[t + 1]!]! - max - Math.log(sum);
      }
      return { perplexity: Math.exp(nll / (ids.length - 1)), predictions: ids.length - 1 };
    });
  }

  /**
   * Profiles every possible early exit of the current plan's layers on a short calibration text
   * (default: the first 128 tokens of DEFAULT_CALIBRATION_TEXT), measures what a run costs on
   * this backend, and picks the exit and draft length with the best expected speed-up (which
   * may be below 1: then speculation is not expected to pay off here). Cached per plan layers
   * and sampling temperature.
   */
  async calibrateExits(options: { greedy?: boolean; temperature?: number; draft?: number; calibration?: string | readonly number[] } = {}): Promise<{ profile: ExitProfile; choice: ExitChoice; stepCost: StepCost }> {
    const layers = this.requireRunner().plan.layers;
    // Profiling is synchronous work in this thread: never start it under a running generation.
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is busy (generating or compiling); calibrate when idle');
    const greedy = options.greedy ?? true;
    const temperature = greedy ? 1 : (options.temperature ?? 1);
    const key = `${layers.join(',')}|${temperature}|${options.calibration === undefined ? 'default' : JSON.stringify(options.calibration)}`;
    let profile = this.exitProfiles.get(key);
    if (!profile) {
      const tokens = this.tokenIds(options.calibration ?? DEFAULT_CALIBRATION_TEXT);
      profile = profileExits(this.config, this.weights, layers, tokens.slice(0, 128), { temperature });
      this.exitProfiles.set(key, profile);
    }
    const stepCost = await this.measureStepCost();
    const choice = chooseExit(profile, { greedy, draft: options.draft, stepCost });
    return { profile, choice, stepCost };
  }

  /**
   * Fixed and per-position cost of one run of the compiled plan's full path, from the best of a
   * few one- and five-position steps: t(S) = fixed + perPosition * S, with `fixed` per
   * session.run (a plan split at an exit runs two per step). Cached per plan.
   */
  private async measureStepCost(): Promise<StepCost> {
    const key = JSON.stringify(this.requireRunner().plan);
    const cached = this.stepCosts.get(key);
    if (cached) return cached;
    return this.withRunner(async (runner) => {
      const ids = [this.config.bosTokenId, ...Array.from({ length: 4 }, (_, i) => (this.config.bosTokenId + 3 + i) % this.config.vocabSize)];
      let one = Infinity;
      let five = Infinity;
      for (let i = 0; i < 5; i++) {
        runner.reset();
        let t = performance.now();
        await runner.step(ids.slice(0, 1));
        one = Math.min(one, performance.now() - t);
        runner.reset();
        t = performance.now();
        await runner.step(ids);
        five = Math.min(five, performance.now() - t);
      }
      const perPosition = Math.max(1e-6, (five - one) / 4);
      const cost = { fixed: Math.max(0, one - perPosition) / runner.runsPerStep, perPosition };
      this.stepCosts.set(key, cost);
      return cost;
    });
  }

  /**
   * Streams generated tokens for `prompt` (text, or token ids used as given). Emits one
   * `token` event per generated token (its `text` is the newly printable text, possibly '' while
   * a multi-byte character or a possible stop string is incomplete), then one `done` event with
   * the whole text and timing stats. One generation at a time per engine.
   */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<TextEvent, void, undefined> {
    const t0 = performance.now();
    let runner = this.requireRunner();
    const c = this.config;
    this.checkExit(options.exit);
    const rp = options.repetitionPenalty;
    if (rp !== undefined && !(Number.isFinite(rp) && rp > 0)) throw new WhittleError('INVALID_ARGUMENT', `repetitionPenalty must be a positive number, got ${rp}`);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new WhittleError('INVALID_ARGUMENT', `maxTokens must be a non-negative integer, got ${maxTokens}`);
    const promptIds = this.promptIds(prompt, options.addBos ?? true);
    if (promptIds.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'empty prompt (and no BOS)');
    if (promptIds.length > c.maxSeqLen) {
      throw new WhittleError('INVALID_ARGUMENT', `the prompt is ${promptIds.length} tokens; the model's context is ${c.maxSeqLen}`, { promptTokens: promptIds.length, maxSeqLen: c.maxSeqLen });
    }
    let specSetup: { exit: number; draft: number | 'auto'; calibration?: SpeculationStats['calibration'] } | null = null;
    if (options.speculate) {
      const draft = options.speculate.draft ?? 'auto';
      if (draft !== 'auto' && (!Number.isInteger(draft) || draft < 1)) throw new WhittleError('INVALID_ARGUMENT', `speculate.draft must be a positive integer or 'auto', got ${draft}`);
      if (options.exit) throw new WhittleError('INVALID_ARGUMENT', 'speculate and exit are exclusive: speculation already drafts through the exit');
      const p = runner.plan;
      let exit = options.speculate.exit ?? p.exit ?? 'auto';
      let calibration: SpeculationStats['calibration'];
      if (exit === 'auto') {
        if (p.layers.length < 2) throw new WhittleError('INVALID_ARGUMENT', 'speculative decoding needs a plan with at least two layers');
        const { profile, choice } = await this.calibrateExits({ greedy: isGreedy(options), temperature: options.temperature, draft: draft === 'auto' ? undefined : draft });
        exit = choice.exit;
        calibration = { predictedSpeedup: choice.speedup, ms: profile.ms };
      }
      if (!Number.isInteger(exit) || exit < 1 || exit >= p.layers.length) {
        throw new WhittleError('INVALID_ARGUMENT', `speculate.exit must leave at least one layer to verify with: 1..${p.layers.length - 1} (got ${exit})`, { exit });
      }
      specSetup = { exit, draft, calibration };
    }
    // Calibration awaited: another call (setPlan, prune) may have swapped the plan meanwhile.
    runner = this.requireRunner();
    if (specSetup && runner.plan.exit !== specSetup.exit) {
      if (specSetup.exit >= runner.plan.layers.length) throw new WhittleError('INVALID_ARGUMENT', `speculate.exit ${specSetup.exit} leaves no layer to verify with in plan ${JSON.stringify(runner.plan)}`);
      const before = this.planBeforeSpeculation ?? runner.plan;
      await this.setPlan({ layers: [...runner.plan.layers], exit: specSetup.exit });
      this.planBeforeSpeculation = before;
      runner = this.requireRunner();
    } else if (!specSetup && this.planBeforeSpeculation) {
      // The exit was compiled only to speculate: go back to the caller's plan (for a plain one,
      // one run per token instead of two on the split plan).
      await this.setPlan(this.planBeforeSpeculation);
      runner = this.requireRunner();
    }
    const stopTokens = new Set(options.stopTokens ?? [c.eosTokenId]);
    const stopStrings = (options.stopStrings ?? []).filter((s) => s.length > 0);
    const rng = createRng(options.seed ?? 0x5eed);
    this.claim();
    // One signal for both the caller's AbortSignal and abort(): signals cannot cross a worker
    // boundary, so a worker wrapper calls abort() instead.
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    if (options.signal?.aborted) controller.abort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.current = controller;
    const signal = controller.signal;
    const step = { exit: options.exit, signal };

    const tokens: number[] = [];
    const history = [...promptIds];
    const decoder = this.tokenizer.streamDecoder();
    let text = ''; // generated text so far, cut at a stop string
    let pending = ''; // decoded but not yet emitted (could start a stop string)
    let stopReason: GenerateStats['stopReason'] = 'max-tokens';
    let prefillMs = 0;
    let decodeStart = 0;
    let ttft = 0;
    const counters: SpecCounters = { rounds: 0, drafted: 0, accepted: 0, produced: 0, draftMs: 0, verifyMs: 0 };
    const adaptive = specSetup?.draft === 'auto' ? new AdaptiveDraft() : null;
    try {
      runner.reset();
      throwIfAborted(signal);
      const pick = (logits: Float32Array, hist: readonly number[]) => sample(logits, options, hist, rng);
      const onPrefill = () => (prefillMs = performance.now() - t0);
      const fixedDraft = specSetup && specSetup.draft !== 'auto' ? specSetup.draft : 1;
      const source = specSetup
        ? speculativeTokens(runner, promptIds, history, options, rng, () => adaptive?.next ?? fixedDraft, counters, (r) => adaptive?.observe(r), c.maxSeqLen, signal, onPrefill)
        : plainTokens(runner, promptIds, history, pick, c.maxSeqLen, step, onPrefill);
      for (;;) {
        if (tokens.length >= maxTokens) break;
        const next = await source.next();
        if (next.done) {
          stopReason = 'context';
          break;
        }
        const { token, origin, rejected } = next.value;
        if (stopTokens.has(token)) {
          stopReason = 'stop-token';
          break;
        }
        tokens.push(token);
        history.push(token);
        pending += decoder.push(token);
        let emit: string;
        const hit = stopStrings.map((s) => pending.indexOf(s)).filter((i) => i >= 0);
        if (hit.length > 0) {
          emit = pending.slice(0, Math.min(...hit));
          pending = '';
          stopReason = 'stop-string';
        } else {
          const keep = heldBack(pending, stopStrings);
          emit = pending.slice(0, pending.length - keep);
          pending = pending.slice(pending.length - keep);
        }
        text += emit;
        if (tokens.length === 1) {
          ttft = performance.now() - t0;
          decodeStart = performance.now();
        }
        const event: TextEvent = { type: 'token', token, text: emit };
        if (origin) event.origin = origin;
        if (rejected) event.rejected = { tokens: rejected, text: this.tokenizer.decode(rejected) };
        yield event;
        if (stopReason === 'stop-string') break;
        throwIfAborted(signal);
      }
      await source.return(undefined);
      if (stopReason !== 'stop-string') text += pending;
      const decodeMs = tokens.length > 1 ? performance.now() - decodeStart : 0;
      const stats: GenerateStats = {
        promptTokens: promptIds.length,
        generatedTokens: tokens.length,
        prefillMs,
        prefillTokensPerSecond: prefillMs > 0 ? (promptIds.length / prefillMs) * 1000 : 0,
        decodeMs,
        decodeTokensPerSecond: decodeMs > 0 ? ((tokens.length - 1) / decodeMs) * 1000 : 0,
        timeToFirstTokenMs: ttft,
        stopReason,
        plan: runner.plan,
        attention: this.attention,
      };
      if (specSetup) {
        stats.speculation = {
          exit: specSetup.exit,
          draft: specSetup.draft,
          meanDraft: counters.rounds > 0 ? counters.drafted / counters.rounds : 0,
          rounds: counters.rounds,
          drafted: counters.drafted,
          accepted: counters.accepted,
          acceptance: counters.drafted > 0 ? counters.accepted / counters.drafted : 0,
          tokensPerRound: counters.rounds > 0 ? counters.produced / counters.rounds : 0,
          draftMs: counters.draftMs,
          verifyMs: counters.verifyMs,
          ...(specSetup.calibration ? { calibration: specSetup.calibration } : {}),
        };
      }
      yield { type: 'done', tokens, text, stats };
    } catch (err) {
      throw asWhittleError(err);
    } finally {
      // Whether finished, aborted or abandoned by the consumer (return()), drop the caches now.
      runner.reset();
      options.signal?.removeEventListener('abort', onAbort);
      this.current = null;
      this.busy = false;
    }
  }

  /**
   * `generate` for callers that cannot hold an async iterator across a boundary (Comlink): calls
   * `onEvent` for every event (awaiting it, so a slow consumer applies back-pressure) and
   * resolves with the `done` event. Rejects with a WhittleError (ABORTED after `abort()`).
   *
   * @example
   * // in the worker: Comlink.expose(engine); on the main thread:
   * const done = await remote.generateEach('Once', { maxTokens: 32 }, Comlink.proxy((ev) => render(ev)));
   */
  async generateEach(prompt: Prompt, options: Omit<GenerateOptions, 'signal'>, onEvent: (event: TextEvent) => void | Promise<void>): Promise<Extract<TextEvent, { type: 'done' }>> {
    for await (const ev of this.generate(prompt, options)) {
      await onEvent(ev);
      if (ev.type === 'done') return ev;
    }
    throw new WhittleError('INTERNAL', 'generation ended without a done event');
  }

  /** Stops the generation in flight within one step (its iterator throws ABORTED); no-op when idle. */
  abort(): void {
    this.current?.abort();
  }

  /** Releases the sessions and caches. */
  async dispose(): Promise<void> {
    const r = this.runner;
    this.runner = null;
    await r?.release();
  }

  /**
   * Prompt ids: text is encoded and gets BOS (when `addBos`); ids are used as given (BOS added
   * unless already first); a conversation goes through the model's chat template, which writes
   * its own special tokens, then is encoded as is (transformers' `apply_chat_template`).
   */
  private promptIds(prompt: Prompt, addBos: boolean): number[] {
    const c = this.config;
    if (typeof prompt === 'string') return addBos ? [c.bosTokenId, ...this.tokenizer.encode(prompt)] : this.tokenizer.encode(prompt);
    if (prompt.length > 0 && typeof prompt[0] === 'object') {
      if (!this.chatTemplate) throw new WhittleError('UNSUPPORTED', "this model has no chat template (no chat_template in its tokenizer_config.json); pass text or token ids instead");
      return this.tokenizer.encode(this.chatTemplate.render(prompt as readonly ChatMessage[]));
    }
    const ids = [...(prompt as readonly number[])];
    return addBos && ids[0] !== c.bosTokenId ? [c.bosTokenId, ...ids] : ids;
  }

  private requireRunner(): PlanRunner {
    if (!this.runner) throw new WhittleError('INVALID_ARGUMENT', 'no plan compiled (call setPlan first) or the engine was disposed');
    return this.runner;
  }

  private checkExit(exit: boolean | undefined): void {
    if (exit && this.requireRunner().plan.exit === undefined) throw new WhittleError('INVALID_ARGUMENT', 'exit requested but the plan has no exit');
  }

  /** Runs `fn` with the engine claimed (one user at a time) and the caches empty before and after. */
  private async withRunner<T>(fn: (runner: PlanRunner) => Promise<T>): Promise<T> {
    const runner = this.requireRunner();
    this.claim();
    try {
      runner.reset();
      return await fn(runner);
    } finally {
      runner.reset();
      this.busy = false;
    }
  }

  private claim(): void {
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is already generating (one generation at a time)');
    this.busy = true;
  }
}
