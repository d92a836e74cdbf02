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
import { WhittleError, asWhittleError, throwIfAborted } from '../../sdk/errors.ts';
import { gqaSupported, type AttentionKind } from '../../models/llama/graph.ts';
import { validatePlan } from '../../models/llama/plan.ts';
import { prepareWeights, type PreparedWeights } from '../../models/llama/prepare.ts';
import { fullPlan, type LlamaConfig, type LlamaPlan } from '../../models/llama/types.ts';
import type { Backend, OrtModule } from '../ort/runtime.ts';
import type { TextModel } from './model.ts';
import { PlanRunner } from './runner.ts';
import { createRng, sample, type SamplingOptions } from './sampler.ts';
import type { TextTokenizer } from './tokenizer.ts';

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
   * Self-speculative decoding (LayerSkip): draft `draft` tokens through the plan's early exit,
   * verify them in one pass of the later layers over the drafts' exit hidden states. Greedy
   * only; the output is the full-depth greedy output. Needs a plan with an exit.
   */
  speculate?: { draft: number };
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
  /** With `speculate`: drafts proposed and accepted (acceptance = accepted / drafted). */
  speculation?: { draft: number; drafted: number; accepted: number; acceptance: number };
}

type TokenPicker = (logits: Float32Array, history: readonly number[]) => number;

/**
 * One token at a time through the whole plan (or its exit path). Returns (done) when the context
 * is full. `history` is the caller's: it already holds every token this yielded.
 */
async function* plainTokens(runner: PlanRunner, prompt: number[], history: readonly number[], pick: TokenPicker, maxSeqLen: number, step: { exit?: boolean; signal: AbortSignal }, onPrefill: () => void): AsyncGenerator<number, void, undefined> {
  let logits = await runner.step(prompt, step);
  onPrefill();
  for (;;) {
    const token = pick(logits, history);
    yield token;
    if (runner.position >= maxSeqLen) return;
    logits = await runner.step([token], step);
  }
}

/** Row `row` of a [rows, vocab] logits matrix (a view). */
function rowLogits(all: Float32Array, row: number, vocab: number): Float32Array {
  return all.subarray(row * vocab, (row + 1) * vocab);
}

/**
 * Greedy self-speculative decoding. Invariant at the top of a round: every layer has cached
 * positions < P, and `t0` (already yielded) is the token at P, not yet fed.
 * Draft: feed t0, d1..dd through the exit segment (d+1 one-token runs), drafting d1..dd from the
 * exit head and keeping each exit hidden state. Verify: one run of the later layers over those
 * d+1 hidden states gives the full model's choice after t0, d1, ..., dd. Accept drafts while they
 * equal those choices; the first disagreement (or the bonus after dd) is the full model's own
 * token. Caches are cut back to the accepted prefix, so layers before the exit never run twice.
 */
async function* speculativeTokens(runner: PlanRunner, prompt: number[], history: readonly number[], pick: TokenPicker, spec: { draft: number; drafted: number; accepted: number }, maxSeqLen: number, signal: AbortSignal, onPrefill: () => void): AsyncGenerator<number, void, undefined> {
  const logits = await runner.step(prompt, { signal });
  onPrefill();
  const vocab = logits.length;
  let t0 = pick(logits, history);
  yield t0;
  for (;;) {
    const P = runner.position;
    if (P >= maxSeqLen) return;
    const d = Math.min(spec.draft, maxSeqLen - P - 1);
    const drafts: number[] = [];
    let hiddens: Float32Array | null = null;
    let tok = t0;
    for (let i = 0; i <= d; i++) {
      const out = await runner.draftStep(tok, signal);
      hiddens ??= new Float32Array((d + 1) * out.hidden.length);
      hiddens.set(out.hidden, i * out.hidden.length);
      if (i < d) {
        tok = pick(out.logits, [...history, ...drafts]);
        drafts.push(tok);
      }
    }
    const full = await runner.verify(hiddens!, d + 1, signal);
    let accepted = 0;
    while (accepted < d && pick(rowLogits(full, accepted, vocab), [...history, ...drafts.slice(0, accepted)]) === drafts[accepted]) accepted++;
    const next = pick(rowLogits(full, accepted, vocab), [...history, ...drafts.slice(0, accepted)]);
    await runner.truncate(P + accepted + 1);
    spec.drafted += d;
    spec.accepted += accepted;
    for (let i = 0; i < accepted; i++) yield drafts[i]!;
    yield next;
    t0 = next;
  }
}

export type TextEvent =
  | { type: 'token'; token: number; text: string }
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
  readonly attention: AttentionKind;
  readonly config: LlamaConfig;
  readonly tokenizer: TextTokenizer;

  /**
   * Prepares weights (transposes, fuses) synchronously; call `setPlan` (or use `create`) before
   * generating. The engine keeps only the prepared copy, not `model.weights`: drop the model's
   * bytes afterwards to hold one copy of the weights in memory.
   */
  constructor(
    private readonly ort: OrtModule,
    private readonly backend: Backend,
    model: TextModel,
    options: Pick<TextEngineOptions, 'attention'> = {},
  ) {
    this.config = model.config;
    this.tokenizer = model.tokenizer;
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
    const runner = this.requireRunner();
    this.checkExit(options.exit);
    this.claim();
    try {
      runner.reset();
      return await runner.step(tokens, options);
    } finally {
      this.busy = false;
    }
  }

  /**
   * Streams generated tokens for `prompt` (text, or token ids used as given). Emits one
   * `token` event per generated token (its `text` is the newly printable text, possibly '' while
   * a multi-byte character or a possible stop string is incomplete), then one `done` event with
   * the whole text and timing stats. One generation at a time per engine.
   */
  async *generate(prompt: string | readonly number[], options: GenerateOptions = {}): AsyncGenerator<TextEvent, void, undefined> {
    const t0 = performance.now();
    const runner = this.requireRunner();
    const c = this.config;
    this.checkExit(options.exit);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new WhittleError('INVALID_ARGUMENT', `maxTokens must be a non-negative integer, got ${maxTokens}`);
    const body = typeof prompt === 'string' ? this.tokenizer.encode(prompt) : [...prompt];
    const promptIds = (options.addBos ?? true) && (typeof prompt === 'string' || body[0] !== c.bosTokenId) ? [c.bosTokenId, ...body] : body;
    if (promptIds.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'empty prompt (and no BOS)');
    if (promptIds.length > c.maxSeqLen) {
      throw new WhittleError('INVALID_ARGUMENT', `the prompt is ${promptIds.length} tokens; the model's context is ${c.maxSeqLen}`, { promptTokens: promptIds.length, maxSeqLen: c.maxSeqLen });
    }
    if (options.speculate) {
      const d = options.speculate.draft;
      if (!Number.isInteger(d) || d < 1) throw new WhittleError('INVALID_ARGUMENT', `speculate.draft must be a positive integer, got ${d}`);
      if (!(options.greedy || options.temperature === 0)) throw new WhittleError('UNSUPPORTED', 'speculative decoding is greedy-only for now (set greedy: true)');
      if (options.exit) throw new WhittleError('INVALID_ARGUMENT', 'speculate and exit are exclusive: speculation already drafts through the exit');
      const p = runner.plan;
      if (p.exit === undefined || p.exit >= p.layers.length) throw new WhittleError('INVALID_ARGUMENT', 'speculative decoding needs a plan whose exit is before its last layer');
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
    const spec = options.speculate ? { draft: options.speculate.draft, drafted: 0, accepted: 0 } : null;
    try {
      runner.reset();
      throwIfAborted(signal);
      const pick = (logits: Float32Array, hist: readonly number[]) => sample(logits, options, hist, rng);
      const onPrefill = () => (prefillMs = performance.now() - t0);
      const source = spec
        ? speculativeTokens(runner, promptIds, history, pick, spec, c.maxSeqLen, signal, onPrefill)
        : plainTokens(runner, promptIds, history, pick, c.maxSeqLen, step, onPrefill);
      for (;;) {
        if (tokens.length >= maxTokens) break;
        const next = await source.next();
        if (next.done) {
          stopReason = 'context';
          break;
        }
        const token = next.value;
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
        yield { type: 'token', token, text: emit };
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
      if (spec) stats.speculation = { ...spec, acceptance: spec.drafted > 0 ? spec.accepted / spec.drafted : 0 };
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
  async generateEach(prompt: string | readonly number[], options: Omit<GenerateOptions, 'signal'>, onEvent: (event: TextEvent) => void | Promise<void>): Promise<Extract<TextEvent, { type: 'done' }>> {
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

  private requireRunner(): PlanRunner {
    if (!this.runner) throw new WhittleError('INVALID_ARGUMENT', 'no plan compiled (call setPlan first) or the engine was disposed');
    return this.runner;
  }

  private checkExit(exit: boolean | undefined): void {
    if (exit && this.requireRunner().plan.exit === undefined) throw new WhittleError('INVALID_ARGUMENT', 'exit requested but the plan has no exit');
  }

  private claim(): void {
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is already generating (one generation at a time)');
    this.busy = true;
  }
}
