/**
 * What the text worker exposes: the TextEngine behind an RPC-friendly surface.
 *
 * Async generators and AbortSignals cannot cross a worker boundary, so a generation is a
 * *stream id*: `start()` begins generating eagerly into a queue (the next token is computed
 * while the previous one is in flight to the page), `next()` drains whatever is queued (or
 * waits for the next event), `cancel()` aborts it within one step. Plain class: testable in Node.
 */
import { WhittleError, asWhittleError, throwIfAborted, toWire, fromWire, type WireError } from '../../core/errors.ts';
import type { LlamaPlan, WeightsSetting, WidthPlan } from '../../models/llama/types.ts';
import { validateWeights } from '../../models/compress/kernel-choice.ts';
import type { WidthMethod } from './width-prune.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import type { DecodeKernelChoice } from './runner.ts';
import { watchWasmHeap, wasmHeapBytes } from '../ort/heap.ts';
import { loadOrt, runtimeInfo, type OrtModule, type RuntimeConfig, type RuntimeInfo } from '../ort/runtime.ts';
import type { GenerateOptions, Prompt, TextEvent } from '../../core/text-types.ts';
import { TextEngine, type PerplexityOptions } from './engine.ts';
import { openTextModelFromHf, textModelFromLlama2c, type StreamedTextModel, type TextModel } from './model.ts';
import type { CalibrateExitsOptions, ExitCalibration } from './exit-calibrator.ts';
import { choosePrunePlan, maxRemovable, type BlockScores, type PruneCriterion } from '../../models/llama/scoring.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import * as Comlink from 'comlink';
import type { PreparedWeights } from '../../models/llama/prepare.ts';
import { writeVariant, type VariantSource, type VariantWidth } from '../../models/compress/variant.ts';
import { openTextVariant, prepareStored, variantStreamOf } from './variant-model.ts';
import type { KernelBackend } from '../../models/compress/kernel-choice.ts';
import { pruneToTarget, type CompressTarget, type TargetCandidate } from './target-prune.ts';

export type { CalibrateExitsOptions, ExitCalibration, PerplexityOptions };

/** Model files as the worker receives them (transferred ArrayBuffers). */
export type TextModelSource =
  | { format: 'llama2c'; checkpoint: ArrayBuffer; tokenizer: ArrayBuffer; name?: string }
  /** Blobs (the store's files) are read tensor by tensor; ArrayBuffers are used in place. */
  | { format: 'hf'; files: Record<string, ArrayBuffer | Blob> }
  /** [variant] A compressed variant folder (models/compress/variant.ts): weights already prepared and quantized. */
  | { format: 'variant'; files: Record<string, ArrayBuffer | Blob> };

/** [variant] Options of `load`. */
export interface TextLoadWireOptions {
  plan?: LlamaPlan;
  attention?: AttentionKind | 'auto';
  /** Which kernels run WASM decode steps (TextEngineOptions.decodeKernel). */
  decodeKernel?: DecodeKernelChoice;
  compress?: WeightsSetting;
  /**
   * [variant] With `compress`: keep the weights' stored (packed) form so `exportVariant()` can
   * write them. Costs nothing where the kernel form is the stored one; 1/8 of the fp32 weights
   * for WASM q4 (run dequantized), until exportVariant() drops it.
   */
  keepVariant?: boolean;
}

export interface TextModelInfo {
  nLayers: number;
  dim: number;
  vocabSize: number;
  maxSeqLen: number;
  plan: LlamaPlan;
  attention: AttentionKind;
  nodeCounts: number[];
  /**
   * Which kernels take decode steps: 'kernel' = Whittle's own WebAssembly SIMD kernels (WASM:
   * int8 weights, and fp32 ones, kept as bf16 where a bf16 checkpoint allows), 'onnxruntime' =
   * the compiled graphs; `kernelBytes`, the kernels'
   * memory (their copy of the weights, KV caches and scratch; 0 without them); `threads`, the
   * threads their products run on (2 with a helper thread where onnxruntime has two or more
   * threads, i.e. a cross-origin isolated page or Node; else 1; 0 without the kernels).
   */
  decode: { path: 'kernel' | 'onnxruntime'; kernelBytes: number; threads: number };
  runtime: RuntimeInfo;
  /**
   * Memory after the last load or compile: onnxruntime's WASM heap (it only grows, so this is its
   * peak; null where it could not be seen) and the prepared weights kept in JS beside the sessions.
   */
  memory: { wasmHeapBytes: number | null; heldWeightBytes: number };
  /** How the linear weights are held: absent while fp32, else the compression setting (TextModel.compress). */
  weights?: WeightsSetting;
}

export type StreamOptions = Omit<GenerateOptions, 'signal'>;

/**
 * AbortSignals cannot cross a worker boundary: a cancellable call (prune, perplexity,
 * calibrateExits) is named by a `job` id the caller picks (unique per caller), and
 * `cancelJob(job)` aborts it, as `cancel(id)` does a stream. Comlink delivers calls in order and
 * a call registers its id before its first await, so a cancel never overtakes its call.
 */
export interface JobOptions {
  job?: number;
}

/** A call's options as they cross the boundary: the signal replaced by a job id. */
export type OverWire<T extends { signal?: AbortSignal }> = Omit<T, 'signal'> & JobOptions;

export interface PruneOptions {
  /** How many blocks to drop. */
  remove: number;
  /** Which block score decides (models/llama/scoring.ts). Default 'perplexity' (Shortened LLaMA's PPL criterion). */
  criterion?: PruneCriterion;
  /** Calibration text (BOS is prepended) or token ids (used as given). Default: DEFAULT_CALIBRATION_TEXT. */
  calibration?: string | number[];
  /** Never drop the first and last block. Default true. */
  keepFirstLast?: boolean;
  /** Stops within one forward pass of the scoring; the call then rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

/**
 * Structured width pruning (workers/text/width-prune.ts): the compiled plan's blocks keep the KV
 * heads and FFN channels that `method` ranks highest, so that `width` of their linear parameters go.
 *
 * @example
 * const { params } = await lm.prune({ width: 0.2, method: 'flap' } satisfies WidthPruneOptions);
 */
export interface WidthPruneOptions {
  /** Fraction of the compiled plan's blocks' linear parameters (Q, K, V, O, gate, up, down) to remove, in [0, 1). */
  width: number;
  /** 'flap' (default): adaptive ratios across blocks and modules, with bias compensation. 'wanda-sp': the same ratio in every block. */
  method?: WidthMethod;
  /** Calibration text (BOS is prepended) or token ids (used as given). Default: DEFAULT_CALIBRATION_TEXT. */
  calibration?: string | number[];
  /** Stops before the next probe graph run; the call then rejects with WhittleError('ABORTED') and the plan stays. */
  signal?: AbortSignal;
}

/**
 * What a width prune compiled: the plan (its `width` names the kept units per block), and the
 * blocks' linear parameters before and after.
 *
 * @example
 * const { plan, params } = await lm.prune({ width: 0.2 });
 * console.log(`${(1 - params.after / params.before) * 100}% of the block weights removed`, plan.width);
 */
export interface WidthPruneResult {
  plan: LlamaPlan;
  width: WidthPlan;
  params: { before: number; after: number };
  info: TextModelInfo;
}

/**
 * `lm.compress({ target })`: reach a parameter budget or a block shape by the mix of depth and
 * width pruning with the lowest calibration perplexity (workers/text/target-prune.ts).
 *
 * @example
 * const result = await lm.compress({ target: { params: 0.5 }, method: 'flap' } satisfies CompressTargetOptions);
 */
export interface CompressTargetOptions {
  target: CompressTarget;
  /** Width scores for a `params` target: 'flap' (default) or 'wanda-sp'; a shape target tries both. */
  method?: WidthMethod;
  /** Calibration text (BOS is prepended) or token ids: scoring and the deciding perplexity. Default: DEFAULT_CALIBRATION_TEXT. */
  calibration?: string | number[];
  /** Most depth / width splits a `params` target tries (default 4). */
  candidates?: number;
}

/**
 * What `compress({ target })` compiled: the chosen plan, every candidate with its calibration
 * perplexity, and the blocks' linear parameters before and after.
 *
 * @example
 * const { plan, params, candidates, chosen } = await lm.compress({ target: { layers: 6, heads: 4, ffn: 256 } });
 * console.log(plan, params.after / params.before, candidates[chosen]!.perplexity);
 */
export interface CompressTargetResult {
  plan: LlamaPlan;
  candidates: TargetCandidate[];
  chosen: number;
  params: { before: number; after: number };
  info: TextModelInfo;
}

export interface PruneResult {
  /** The plan now compiled: the kept blocks, no early exit. */
  plan: LlamaPlan;
  /** Dropped blocks, lowest score first. */
  removed: number[];
  scores: BlockScores;
  info: TextModelInfo;
}

/** The pump runs ahead of the consumer by at most this many events (backpressure). */
const READ_AHEAD = 8;

interface Stream {
  queue: TextEvent[];
  /** Resolves the pump when the consumer drained the queue. */
  space: (() => void) | null;
  error: WireError | null;
  finished: boolean;
  wake: (() => void) | null;
  controller: AbortController;
  /** The pump: settles (never rejects) once the engine let go of this generation. */
  pumped: Promise<void>;
}

/** A source's model: a llama2.c checkpoint decoded, or a Hugging Face folder opened for streamed reads. */
function sourceModel(source: Exclude<TextModelSource, { format: 'variant' }>): Promise<TextModel | StreamedTextModel> {
  return source.format === 'llama2c' ? Promise.resolve(textModelFromLlama2c(source.checkpoint, source.tokenizer, source.name)) : openTextModelFromHf(source.files);
}

export class TextService {
  private ort: OrtModule | null = null;
  private runtime: RuntimeConfig | null = null;
  private engine: TextEngine | null = null;
  private streams = new Map<number, Stream>();
  /** Pumps still generating, cancelled ones included (they stop within one step). */
  private running = 0;
  /** Pumps of cancelled streams that have not stopped yet (see cancelledSettled). */
  private stopping = new Set<Promise<void>>();
  /** Cancellable calls in flight, by the caller's job id. */
  private jobs = new Map<number, AbortController>();
  /** Block scores of the last calibration, by its token ids: scores come from the full-depth model, so re-pruning with another k reuses them. */
  private lastScores: { key: string; scores: BlockScores } | null = null;
  private nextId = 1;
  /** [variant] The streamed source the stored form below was prepared from (loadPrepared), for the engine to read after the export. */
  private storedSource: StreamedTextModel | null = null;
  /** [variant] The weights' stored form, kept for exportVariant() (load with keepVariant). */
  private stored: PreparedWeights | null = null;
  /** [variant] The width plan `stored` is narrowed to (a compressed width plan's variant), if any. */
  private storedWidth: VariantWidth | undefined;
  /** [variant] How the loaded model's tokenizer conventions go: recorded in an exported variant. */
  private variantFormat: VariantSource['format'] = 'hf';
  /** [variant] The variant file `openVariantStream` opened, read chunk by chunk by `nextVariantChunk`. */
  private variantChunks: AsyncGenerator<Uint8Array, void, undefined> | null = null;

  async init(runtime: RuntimeConfig): Promise<RuntimeInfo> {
    watchWasmHeap(); // before onnxruntime creates its memory
    this.ort = await loadOrt(runtime);
    this.runtime = runtime;
    return runtimeInfo(runtime);
  }

  async load(source: TextModelSource, options: TextLoadWireOptions = {}): Promise<TextModelInfo> {
    if (!this.ort || !this.runtime) throw new WhittleError('INVALID_ARGUMENT', 'init() must run before load()');
    this.stored = null;
    this.storedSource = null;
    this.storedWidth = undefined;
    // Wanda needs the fp32 graphs first (activations), so the model loads fp32 and compresses; so
    // does a width plan whose variant is kept (its narrowed blocks are quantized, as after pruning).
    const wanda = options.compress?.sparsity && (options.compress.sparsity.method ?? 'wanda') === 'wanda';
    if (source.format !== 'variant' && options.compress && (wanda || (options.plan?.width && options.keepVariant))) return this.loadCalibrated(source, options, options.compress);
    if (source.format === 'variant' || (options.compress && options.keepVariant)) return this.loadPrepared(source, options);
    const model = await sourceModel(source);
    await this.engine?.dispose();
    this.engine = null;
    this.lastScores = null;
    this.variantFormat = source.format; // a width variant exported later records it
    this.engine = await TextEngine.create(this.ort, this.runtime.backend, model, options);
    return this.describe();
  }

  /**
   * A load whose compression measures the model (sparsity 'wanda'): fp32 engine, then
   * `TextEngine.compress` (masks from the calibration text, then quantization), keeping the
   * stored form for exportVariant() with `keepVariant`, so the sparse variant is cached as any other.
   */
  private async loadCalibrated(source: Exclude<TextModelSource, { format: 'variant' }>, options: TextLoadWireOptions, setting: WeightsSetting): Promise<TextModelInfo> {
    validateWeights(setting);
    const model = await sourceModel(source);
    await this.engine?.dispose();
    this.engine = null;
    this.lastScores = null;
    const { compress: _compress, keepVariant, ...rest } = options;
    const engine = await TextEngine.create(this.ort!, this.runtime!.backend, model, rest);
    try {
      await engine.compress(setting, { keepStored: keepVariant === true });
    } catch (err) {
      await engine.dispose();
      throw err;
    }
    this.engine = engine;
    if (keepVariant) {
      this.stored = engine.takeStored();
      this.storedWidth = engine.narrowedTo;
      this.variantFormat = source.format;
    }
    return this.describe();
  }

  /**
   * [variant] Loads through prepared weights: a variant folder's (read, no quantization), or a
   * source prepared in stored form and kept for exportVariant(). The engine gets the kernel form.
   */
  private async loadPrepared(source: TextModelSource, options: TextLoadWireOptions): Promise<TextModelInfo> {
    const backend = this.runtime!.backend;
    const engineOptions = { ...(options.attention ? { attention: options.attention } : {}), ...(options.decodeKernel ? { decodeKernel: options.decodeKernel } : {}), ...(options.plan ? { plan: options.plan } : {}) };
    // The source is read and checked before the loaded engine goes: a bad file loses nothing.
    if (source.format === 'variant') {
      // Only the header is read here: the engine reads the blocks from the file as plans compile.
      const variant = await openTextVariant(source.files);
      await this.dropEngine();
      this.variantFormat = variant.info.source.format;
      this.engine = await TextEngine.fromVariantFile(this.ort!, backend, variant.model, variant.file, engineOptions);
      return this.describe();
    }
    const full = await sourceModel(source);
    const setting = options.compress!;
    const stored = await prepareStored(full, setting, backend);
    const model = { config: full.config, tokenizer: full.tokenizer, ...(full.chatTemplate ? { chatTemplate: full.chatTemplate } : {}) };
    await this.dropEngine();
    this.stored = stored;
    this.variantFormat = source.format;
    // Once the variant is exported the engine reads the files again instead of keeping its copy.
    this.storedSource = 'layer' in full.weights ? (full as StreamedTextModel) : null;
    // The engine derives the kernel form; it keeps whichever of the two forms is smaller.
    this.engine = await TextEngine.fromStored(this.ort!, backend, model, stored, setting, engineOptions);
    return this.describe();
  }

  private async dropEngine(): Promise<void> {
    await this.engine?.dispose();
    this.engine = null;
    this.lastScores = null;
  }

  /**
   * [variant] Opens the compressed variant of `source` (a Hugging Face folder or a llama2.c
   * checkpoint) for `setting` as model.whittle.safetensors produced a block at a time
   * (models/compress/variant-stream.ts): nothing is compiled and no onnxruntime is needed (no
   * init()), and what the worker holds is one block and one chunk. Returns the file's size, known
   * before any weight is read; `nextVariantChunk` then hands out its bytes in order. The page
   * writes them into its store and loads the variant from there, so the first load with
   * `compress` peaks where a load from the cached variant does. UNSUPPORTED for the settings that
   * need the whole model (sparsity, AWQ): load with `keepVariant` and `exportVariant` instead.
   */
  async openVariantStream(source: Exclude<TextModelSource, { format: 'variant' }>, setting: WeightsSetting, variant: Omit<VariantSource, 'format'>, backend: KernelBackend): Promise<{ size: number }> {
    validateWeights(setting);
    await this.variantChunks?.return();
    this.variantChunks = null;
    const model = await sourceModel(source);
    const stream = await variantStreamOf(model, setting, backend, { ...variant, format: source.format });
    this.variantChunks = stream.chunks();
    return { size: stream.size };
  }

  /** [variant] The next bytes of the stream `openVariantStream` opened (transferred), or null at its end (the stream is then closed). */
  async nextVariantChunk(): Promise<Uint8Array | null> {
    if (!this.variantChunks) throw new WhittleError('INVALID_ARGUMENT', 'no variant stream is open (openVariantStream first)');
    const next = await this.variantChunks.next().catch(async (err: unknown) => {
      this.variantChunks = null;
      throw err;
    });
    if (next.done) {
      this.variantChunks = null;
      return null;
    }
    return next.value; // transferred (workers/rpc.ts)
  }

  /** [variant] Abandons the open variant stream (nothing more is read or quantized). */
  async closeVariantStream(): Promise<void> {
    await this.variantChunks?.return();
    this.variantChunks = null;
  }

  /**
   * [variant] The loaded model's compressed weights as model.whittle.safetensors, in parts whose
   * concatenation is the file (transferable copies). Only after a `load` with `compress` and
   * `keepVariant`; the stored form is dropped afterwards (a second call is INVALID_ARGUMENT).
   */
  exportVariant(source: Omit<VariantSource, 'format'>): ArrayBuffer[] {
    const engine = this.requireEngine();
    if (!this.stored || !engine.weights) throw new WhittleError('INVALID_ARGUMENT', 'no variant to export: load with compress and keepVariant first (and export once)');
    const stored = this.stored;
    this.stored = null;
    // The engine kept the stored form (with an fp32 table) for this export alone: at Llama-3.2-1B
    // q8, 2.5 GB of JS for the model's life. From now on its compiles read the source again, and
    // the stored form is released array by array as the file's parts are copied from it.
    const sourceModel = this.storedSource;
    this.storedSource = null;
    if (sourceModel) engine.readFromSource(sourceModel);
    const parts = writeVariant(stored, engine.weights, { ...source, format: this.variantFormat }, this.storedWidth, { consume: sourceModel !== null });
    return Comlink.transfer(parts, parts);
  }

  /**
   * [variant] The compiled width plan's narrowed fp32 blocks as model.whittle.safetensors (a
   * width variant, format 3; `TextEngine.widthVariant`), in transferable parts: a load of it
   * compiles the plan without slicing or measuring anything again.
   */
  async exportWidthVariant(source: Omit<VariantSource, 'format'>): Promise<ArrayBuffer[]> {
    const { stored, width } = await this.requireEngine().widthVariant();
    const parts = writeVariant(stored, { linear: 'f32' }, { ...source, format: this.variantFormat }, width);
    return Comlink.transfer(parts, parts);
  }

  async setPlan(plan: LlamaPlan): Promise<TextModelInfo> {
    await this.cancelledSettled();
    await this.requireEngine().setPlan(plan);
    return this.describe();
  }

  /** Compresses the linear weights (one way) and recompiles the plan; see TextEngine.compress. */
  async compress(setting: WeightsSetting, options: JobOptions = {}): Promise<TextModelInfo> {
    await this.job(options.job, (signal) => this.requireEngine().compress(setting, { signal }));
    this.lastScores = null; // block scores were measured on the fp32 weights
    return this.describe();
  }

  /** Reaches a target shape by depth and width pruning (workers/text/target-prune.ts); see CompressTargetOptions. */
  async compressTarget(options: OverWire<CompressTargetOptions & { signal?: AbortSignal }>): Promise<CompressTargetResult> {
    const { job, ...rest } = options;
    return this.job(job, async (signal) => {
      const result = await pruneToTarget(this.requireEngine(), { ...rest, ...(signal ? { signal } : {}) });
      return { ...result, info: this.describe() };
    });
  }

  /**
   * On-device depth pruning: scores every block on the calibration text (block influence, angular
   * distance, perplexity without the block; through probe graphs compiled from the prepared
   * weights for the call, see workers/text/block-scoring.ts), drops the `remove` lowest by
   * `criterion` and compiles that plan from the weights in memory. Scores always come from the full-depth model, whatever plan is
   * compiled now; the new plan has no early exit.
   */
  async prune(options: OverWire<PruneOptions>): Promise<PruneResult> {
    return this.job(options.job, (signal) => this.pruneWith(options, signal));
  }

  /**
   * On-device width pruning of the compiled plan's blocks (`TextEngine.pruneWidth`): FLAP or
   * Wanda-sp scores from one calibration pass through probe graphs; the plan keeps its blocks and
   * exit and gains a `width`. (Its own method rather than an overload of `prune`: Comlink's
   * remote type keeps one signature per method.)
   */
  async pruneWidth(options: OverWire<WidthPruneOptions>): Promise<WidthPruneResult> {
    const { width, method, calibration, job } = options;
    return this.job(job, async (signal) => {
      const out = await this.requireEngine().pruneWidth({ ratio: width, method: method ?? 'flap', ...(calibration !== undefined ? { calibration } : {}), signal });
      return { plan: out.plan, width: out.width, params: out.params, info: this.describe() };
    });
  }

  private async pruneWith(options: OverWire<PruneOptions>, signal: AbortSignal | undefined): Promise<PruneResult> {
    const engine = this.requireEngine();
    const c = engine.config;
    const calibration = options.calibration ?? DEFAULT_CALIBRATION_TEXT;
    const tokens = engine.tokenIds(calibration);
    // Refuse a bad count before the (slow) scoring; choosePrunePlan checks it again.
    const allowed = maxRemovable(c.nLayers, options.keepFirstLast ?? true);
    if (!Number.isInteger(options.remove) || options.remove < 0 || options.remove > allowed) {
      throw new WhittleError('INVALID_ARGUMENT', `cannot remove ${options.remove} of ${c.nLayers} blocks (at most ${allowed})`, { remove: options.remove, nLayers: c.nLayers, allowed });
    }
    const criterion = options.criterion ?? 'perplexity';
    const key = tokens.join(',');
    if (this.lastScores?.key !== key) this.lastScores = { key, scores: await engine.scoreBlocks(tokens, { signal }) };
    const scores = this.lastScores.scores;
    const { plan, removed } = choosePrunePlan(scores, { remove: options.remove, criterion, keepFirstLast: options.keepFirstLast });
    throwIfAborted(signal);
    // A width already pruned stays on the blocks that remain (its compensation means are then
    // measured again through the new block sequence).
    const width = engine.plan.width;
    await engine.setPlan(width ? { ...plan, width } : plan);
    return { plan: engine.plan, removed, scores, info: this.describe() };
  }

  /**
   * Per-exit agreement/acceptance of the current plan's layers on calibration text and the exit
   * and draft length with the best expected speed-up (what `speculate: { exit: 'auto' }` uses).
   */
  calibrateExits(options: OverWire<CalibrateExitsOptions> = {}): Promise<ExitCalibration> {
    const { job, ...rest } = options;
    return this.job(job, (signal) => this.requireEngine().calibrateExits({ ...rest, signal }));
  }

  /** Teacher-forced perplexity of `text` (BOS prepended) or ids under the compiled plan. */
  perplexity(text: string | number[], options: OverWire<PerplexityOptions> = {}): Promise<{ perplexity: number; predictions: number }> {
    return this.job(options.job, (signal) => this.requireEngine().perplexity(text, { signal }));
  }

  /** Aborts the cancellable call named `job` within one step or pass; it rejects with ABORTED. No-op once it ended. */
  cancelJob(job: number): void {
    this.jobs.get(job)?.abort();
  }

  /** Logits [vocab] after a fresh prefill of `tokens` (scoring, tests). */
  async logits(tokens: number[], options: { exit?: boolean } = {}): Promise<Float32Array> {
    await this.cancelledSettled();
    return this.requireEngine().logits(tokens, options);
  }

  encode(text: string): number[] {
    return this.requireEngine().tokenizer.encode(text);
  }

  /** The text of `ids` (see TextModel.decode); INVALID_ARGUMENT for an id outside the vocabulary. */
  decode(ids: number[], skipSpecial = true): string {
    const engine = this.requireEngine();
    const vocab = engine.config.vocabSize;
    if (!Array.isArray(ids)) throw new WhittleError('INVALID_ARGUMENT', 'decode takes an array of token ids');
    for (const id of ids) if (!Number.isSafeInteger(id) || id < 0 || id >= vocab) throw new WhittleError('INVALID_ARGUMENT', `token ${String(id)} is outside the vocabulary (${vocab})`);
    return engine.tokenizer.decode(ids, skipSpecial);
  }

  /**
   * Runs a whole generation inside the worker and returns its `done` event: no per-token
   * round trips, for callers that want the result, not the stream.
   */
  async complete(prompt: Prompt, options: StreamOptions = {}): Promise<Extract<TextEvent, { type: 'done' }>> {
    await this.cancelledSettled();
    for await (const ev of this.requireEngine().generate(prompt, options)) if (ev.type === 'done') return ev;
    throw new WhittleError('INTERNAL', 'generation ended without a done event');
  }

  /** Starts a generation; returns its stream id. */
  start(prompt: Prompt, options: StreamOptions = {}): number {
    const engine = this.requireEngine();
    const id = this.nextId++;
    const stream: Stream = { queue: [], space: null, error: null, finished: false, wake: null, controller: new AbortController(), pumped: Promise.resolve() };
    this.streams.set(id, stream);
    const iterator = engine.generate(prompt, { ...options, signal: stream.controller.signal });
    const pump = async () => {
      this.running++;
      // Taken now, before this stream could be cancelled itself: never waits on its own pump.
      const settled = this.cancelledSettled();
      try {
        await settled;
        for await (const event of iterator) {
          stream.queue.push(event);
          stream.wake?.();
          if (stream.queue.length >= READ_AHEAD && !stream.controller.signal.aborted) {
            await new Promise<void>((resolve) => (stream.space = resolve));
            stream.space = null;
          }
        }
      } catch (err) {
        stream.error = toWire(asWhittleError(err));
      } finally {
        this.running--;
        stream.finished = true;
        stream.wake?.();
      }
    };
    stream.pumped = pump();
    return id;
  }

  /** Everything queued for stream `id` (waits for at least one event unless the stream ended). */
  async next(id: number): Promise<{ events: TextEvent[]; done: boolean }> {
    const stream = this.streams.get(id);
    if (!stream) throw new WhittleError('INVALID_ARGUMENT', `no generation stream ${id}`);
    if (stream.queue.length === 0 && !stream.finished) {
      await new Promise<void>((resolve) => (stream.wake = resolve));
      stream.wake = null;
    }
    const events = stream.queue.splice(0);
    stream.space?.();
    if (!stream.finished) return { events, done: false };
    // Deliver the events first; the error surfaces on the following call (unless it was cancelled meanwhile).
    if (stream.error && events.length > 0 && this.streams.get(id) === stream) return { events, done: false };
    this.streams.delete(id); // drained to its end: nothing of it stays
    if (stream.error) throw fromWire(stream.error);
    return { events, done: true };
  }

  /**
   * Aborts stream `id` within one step and forgets it: a `next()` already waiting rejects with
   * ABORTED, a later one with INVALID_ARGUMENT (the caller that cancels has stopped reading).
   * No-op for a stream that ended.
   */
  cancel(id: number): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.streams.delete(id);
    stream.controller.abort();
    stream.space?.(); // a paused pump must wake up to see the abort
    if (!stream.finished) {
      this.stopping.add(stream.pumped);
      void stream.pumped.then(() => this.stopping.delete(stream.pumped));
    }
  }

  /**
   * Settles once the cancelled streams' pumps have stopped. The engine runs one call at a time
   * and a cancelled generation still finishes the step it is in, so a call that arrives right
   * after a cancel (the next generate after a `break`) waits for it instead of failing as busy.
   */
  private cancelledSettled(): Promise<unknown> {
    return this.stopping.size === 0 ? Promise.resolve() : Promise.all([...this.stopping]);
  }

  /**
   * Generation streams this service holds (`held`: started and not yet drained or cancelled) and
   * how many are still generating (`running`): what a consumer that stopped reading must not leave.
   */
  streamStats(): { held: number; running: number } {
    return { held: this.streams.size, running: this.running };
  }

  async dispose(): Promise<void> {
    for (const id of this.streams.keys()) this.cancel(id);
    for (const job of this.jobs.keys()) this.cancelJob(job);
    await this.engine?.dispose();
    this.engine = null;
  }

  /** The loaded model and its compiled plan now. */
  describe(): TextModelInfo {
    const engine = this.requireEngine();
    const c = engine.config;
    return {
      nLayers: c.nLayers,
      dim: c.dim,
      vocabSize: c.vocabSize,
      maxSeqLen: c.maxSeqLen,
      plan: engine.plan,
      attention: engine.attention,
      nodeCounts: engine.nodeCounts,
      decode: engine.decode,
      runtime: runtimeInfo(this.runtime!, this.ort!),
      ...(engine.weights ? { weights: engine.weights } : {}),
      memory: { wasmHeapBytes: wasmHeapBytes(), heldWeightBytes: engine.heldWeightBytes },
    };
  }

  /** Runs `fn` under job id `job` (cancelJob aborts its signal); without an id, with no signal. */
  private async job<T>(job: number | undefined, fn: (signal: AbortSignal | undefined) => Promise<T>): Promise<T> {
    if (job === undefined) {
      await this.cancelledSettled();
      return fn(undefined);
    }
    if (this.jobs.has(job)) throw new WhittleError('INVALID_ARGUMENT', `job ${job} is already running`);
    const controller = new AbortController();
    this.jobs.set(job, controller);
    try {
      await this.cancelledSettled(); // after registering: a cancelJob sent meanwhile still finds it
      return await fn(controller.signal);
    } finally {
      this.jobs.delete(job);
    }
  }

  private requireEngine(): TextEngine {
    if (!this.engine) throw new WhittleError('INVALID_ARGUMENT', 'no text model loaded');
    return this.engine;
  }
}
