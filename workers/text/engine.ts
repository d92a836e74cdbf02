/**
 * The text generation engine: a plain class, no worker or comlink code, no DOM or Node imports.
 * A worker wraps it in a few lines (`Comlink.expose(...)`); tests and the CLI call it directly.
 *
 * It coordinates: holds the prepared weights (so `setPlan` recompiles without re-reading any
 * file), one compiled plan (sessions + KV caches, runner.ts) and the tokenizer, and runs one
 * call at a time. The decode loops (plain-decode.ts, speculative-decode.ts), the text stream
 * (streamer.ts), exit calibration (exit-calibrator.ts) and block scoring (block-scoring.ts) live
 * in their own files; the option and event types that cross the worker boundary in
 * core/text-types.ts. Scoring and calibration run the prepared weights through probe graphs
 * (probe-runner.ts) compiled for the call and released after it.
 *
 * @example
 * const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
 * const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin, tok));
 * for await (const ev of engine.generate('Once upon a time', { maxTokens: 32 })) {
 *   if (ev.type === 'token') write(ev.text); else write(ev.tail);
 * }
 * await engine.setPlan({ layers: [0, 1, 3, 4] }); // drop block 2, same weights
 */
import { WhittleError, asWhittleError, throwIfAborted } from '../../core/errors.ts';
import type { ChatMessage, GenerateOptions, GenerateStats, Prompt, TextEvent } from '../../core/text-types.ts';
import { gqaSupported, type AttentionKind } from '../../models/llama/graph.ts';
import { validatePlan } from '../../models/llama/plan.ts';
import { prepareLayerwiseFrom, preparedBytes, prepareWeights, prepareWeightsFrom, type LayerwiseWeights, type PreparedWeights } from '../../models/llama/prepare.ts';
import { compressPrepared } from '../../models/compress/compress-prepared.ts';
import { storagePlan, toKernelForms, withStoredHead } from '../../models/compress/variant-forms.ts';
import { readVariant, type VariantWidth } from '../../models/compress/variant.ts';
import { variantLayerwise, type VariantFile } from '../../models/compress/variant-layerwise.ts';
import { readWhole } from '../../models/import/hf/byte-source.ts';
import { sparsifyWithCalibration } from './sparsify.ts'; // sparsity (issue #14)
import { compressPreparedAwq } from './awq-compress.ts'; // AWQ (issue #13)
import type { BlockScores } from '../../models/llama/scoring.ts';
import { fullPlan, headSizeOf, type LlamaConfig, type LlamaPlan, type WeightsSetting, type WidthPlan } from '../../models/llama/types.ts';
import type { Backend, OrtModule } from '../ort/runtime.ts';
import { scoreBlocksOnnx } from './block-scoring.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import type { ChatTemplate } from './chat.ts';
import { Checkpoint } from './checkpoint.ts';
import { AdaptiveDraft } from './draft-length.ts';
import { chooseExit } from './exit-calibration.ts';
import { ExitCalibrator, type CalibrateExitsOptions, type ExitCalibration } from './exit-calibrator.ts';
import type { StreamedTextModel, TextModel } from './model.ts';
import { dropoutTokens, type DropoutRun } from './dropout-decode.ts';
import { resolveDropout } from './dropout-members.ts';
import { plainTokens } from './plain-decode.ts';
import { ProbeRunner, type ProbeSource } from './probe-runner.ts';
import { PlanRunner, type CompileLimits, type DecodeKernelChoice } from './runner.ts';
import { createRng, isGreedy, sample } from './sampler.ts';
import { newSpecCounters, speculationStats, speculativeTokens, type SpeculationSetup } from './speculative-decode.ts';
import { TextStreamer } from './streamer.ts';
import type { TextTokenizer } from './tokenizer.ts';
import { sliceWidth, validateWidth, type InputMeans } from '../../models/compress/width-slice.ts';
import type { Standardization } from '../../models/compress/width-select.ts';
import { collectLinearInputStats } from './activation-stats.ts';
import { scoreWidth, type WidthMethod, type WidthOutcome } from './width-prune.ts';

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
  /**
   * Which kernels run WASM decode steps (runner.ts `DecodeKernelChoice`): default 'auto' =
   * Whittle's own int8 SIMD kernels where the weights are int8 and their copy is small enough,
   * else onnxruntime's graphs.
   */
  decodeKernel?: DecodeKernelChoice;
  /**
   * Compress the linear weights when the model loads (models/compress/): the fp32 copy is never
   * kept, so memory and cache hold the compressed form only. See `TextEngine.compress`.
   */
  compress?: WeightsSetting;
}

export interface PruneWidthOptions {
  /** Fraction of the compiled plan's blocks' linear parameters to remove, in [0, 1) (0 with `keep`). */
  ratio: number;
  /** A target shape instead: every block of the plan keeps exactly this many KV heads and FFN channels. */
  keep?: { kvHeads: number; ffn: number };
  method: WidthMethod;
  /** FLAP only: standardize its scores over all blocks ('model', default) or per block ('block', as FLAP's code); models/compress/width-select.ts. */
  standardization?: Standardization;
  /** Calibration text (BOS is prepended) or token ids (used as given). Default: DEFAULT_CALIBRATION_TEXT. */
  calibration?: string | readonly number[];
  /** Stops before the next compile or run of a probe graph; the call then rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

export interface PerplexityOptions {
  /** Stops within one step; the call then rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

export interface ScoreBlocksOptions {
  /** Also compute the perplexity with each block removed and at full depth. Default true. */
  perplexity?: boolean;
  /** Stops before the next compile or run of a scoring graph; the call then rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

/** A model whose weights come through a reader (functions) rather than as arrays. */
const isStreamed = (m: TextModel | StreamedTextModel): m is StreamedTextModel => typeof (m.weights as { layer?: unknown }).layer === 'function';

export class TextEngine {
  private runner: PlanRunner | null = null;
  /**
   * Dropout decoding's graphs for the compiled plan (SegmentOptions.dropout), compiled at the
   * first dropout generation and kept until the plan or weights change: a second set of
   * sessions, so while it exists onnxruntime holds the weights twice.
   */
  private dropoutRunner: PlanRunner | null = null;
  private busy = false;
  /** Aborts the generation in flight (`abort()`); linked to the caller's signal. */
  private current: AbortController | null = null;
  /**
   * The prepared weights while the engine holds them; null for a model streamed from its files
   * (compressed at load or not): the compiled sessions hold the weights, and calls that compile
   * (setPlan, compress, scoring, calibration) re-prepare them from the files for their duration
   * (`withPrepared`, `layerwise`). Weights compressed by `compress()` later are held.
   */
  private prepared: PreparedWeights | null;
  /** Re-reads and prepares the weights from the model's files; null when the weights only exist in `prepared`. */
  private reprepare: (() => Promise<PreparedWeights>) | null = null;
  /** The same files as weights prepared one block at a time while a plan compiles (prepare.ts LayerwiseWeights). */
  private layerwise: ((signal?: AbortSignal) => Promise<LayerwiseWeights>) | null = null;
  /** The stored (packed) form `reprepare` derives the kernel form from, when the engine keeps only that (fromStored). */
  private heldStored: PreparedWeights | null = null;
  readonly headSize: number;
  /** Exit profiles and step costs for speculation (cached across calls). */
  private calibrator: ExitCalibrator;
  /** When the held weights were compressed at a width plan: that width and the blocks narrowed to it (only those may compile). */
  private heldWidth: { width: WidthPlan; layers: Set<number> } | null = null;
  /** The stored form of the last `compress({ keepStored: true })`, until `takeStored()`. */
  private keptStored: PreparedWeights | null = null;
  /** How the linear weights are held: undefined = fp32; else the setting they were compressed with. */
  private compression: WeightsSetting | undefined;
  /**
   * FLAP's compensation needs each block's o_proj / down_proj input means on calibration text:
   * kept from the last width pruning (or measured for a width plan given to setPlan), for the
   * plan blocks (`key`) they were measured through.
   */
  private widthMeans: { key: string; means: (InputMeans | undefined)[] } | null = null;
  /**
   * Calibration passes this engine ran for width pruning (scoring, or FLAP's compensation means
   * for a width plan it had to slice): what a width variant saves, so a reload can be checked to run none.
   */
  widthCalibrationPasses = 0;
  /** When `generate` recompiled the plan with another exit to speculate: the caller's plan, restored for the next plain generation. */
  private planBeforeSpeculation: LlamaPlan | null = null;
  /** The model's chat template, when it has one: `generate` then accepts a list of messages. */
  readonly chatTemplate: ChatTemplate | undefined;
  readonly attention: AttentionKind;
  /** Passed to every PlanRunner.compile (TextEngineOptions.decodeKernel). */
  private readonly decodeKernel: DecodeKernelChoice;
  readonly config: LlamaConfig;
  readonly tokenizer: TextTokenizer;

  /**
   * Takes weights already prepared (models/llama/prepare.ts); `create` prepares them from the
   * model's files. The engine keeps only the prepared copy: scoring and exit calibration compile
   * their graphs from it too. Call `setPlan` (or use `create`) before generating.
   */
  constructor(
    private readonly ort: OrtModule,
    private readonly backend: Backend,
    model: Omit<TextModel, 'weights'>,
    prepared: PreparedWeights | null,
    options: Pick<TextEngineOptions, 'attention' | 'compress' | 'decodeKernel'> = {},
  ) {
    this.config = model.config;
    this.tokenizer = model.tokenizer;
    this.chatTemplate = model.chatTemplate;
    this.prepared = prepared;
    this.compression = options.compress;
    this.decodeKernel = options.decodeKernel ?? 'auto';
    const wanted = options.attention ?? 'auto';
    const hs = headSizeOf(model.config);
    this.headSize = hs;
    if (wanted === 'gqa' && !gqaSupported(hs)) throw new WhittleError('UNSUPPORTED', `GroupQueryAttention needs a head size divisible by 8 (this model: ${hs})`);
    this.attention = wanted !== 'auto' ? wanted : backend === 'wasm' ? 'onnx' : gqaSupported(hs) ? 'gqa' : 'plain';
    this.calibrator = new ExitCalibrator(this.config);
  }

  /**
   * Runs `fn` with the prepared weights (and a probe source over them): the held copy, or one
   * re-prepared from the model's files for this call and dropped after it.
   */
  private async withPrepared<T>(fn: (weights: PreparedWeights, probe: ProbeSource) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const weights = this.prepared ?? (await this.requireReprepare(signal));
    return fn(weights, { ort: this.ort, backend: this.backend, weights, attention: this.attention });
  }

  private async requireReprepare(signal?: AbortSignal): Promise<PreparedWeights> {
    if (!this.reprepare) throw new WhittleError('INTERNAL', 'the engine holds no weights and cannot re-read them');
    throwIfAborted(signal);
    return this.reprepare();
  }

  /**
   * Prepares the model's weights (transposed, fused; with `compress`, each layer quantized as it
   * is prepared, so no full fp32 prepared copy exists), then compiles the first plan. A streamed
   * model (openTextModelFromHf) is read layer by layer: the checkpoint is never in memory whole.
   */
  static async create(
    ort: OrtModule,
    backend: Backend,
    model: TextModel | StreamedTextModel,
    options: TextEngineOptions & { signal?: AbortSignal; /** Keep the prepared copy of a streamed model in JS (faster re-planning; as much memory again as the sessions hold). */ holdWeights?: boolean } = {},
  ): Promise<TextEngine> {
    if (options.compress && options.plan?.width) {
      // A compressed width plan (a handle replayed after a worker death, or a saved plan):
      // narrow in fp32 first, then quantize the narrowed blocks, as `compress` after pruning does.
      const { compress, ...fp32Options } = options;
      const engine = await TextEngine.create(ort, backend, model, fp32Options);
      try {
        await engine.compress(compress, options.signal ? { signal: options.signal } : {});
      } catch (err) {
        await engine.dispose();
        throw err;
      }
      return engine;
    }
    const prepareOptions = options.compress ? { weights: options.compress, backend } : { backend };
    if (isStreamed(model) && options.holdWeights !== true) {
      // The sessions hold the weights: a second copy in JS (fp32, or compressed beside an fp32
      // embedding and head) would double the model's memory for nothing but faster re-planning.
      // Compiles read (and compress) the files again, one segment's blocks at a time
      // (`layerwise`), or whole for the calls that need every block.
      const engine = new TextEngine(ort, backend, model, null, options);
      engine.compileFrom(model);
      await engine.setPlan(options.plan, options.signal);
      return engine;
    }
    const prepared = isStreamed(model)
      ? await prepareWeightsFrom(model.config, model.weights, { ...prepareOptions, ...(options.signal ? { signal: options.signal } : {}) })
      : prepareWeights(model.config, model.weights, prepareOptions);
    const engine = new TextEngine(ort, backend, model, prepared, options);
    await engine.setPlan(options.plan);
    return engine;
  }

  /**
   * An engine on compressed weights given in their stored form (a variant's packed weights,
   * models/compress/variant-forms.ts), compiled in the kernel form `backend` runs for `setting`.
   * Where the kernel form is the bigger one (WASM q4: int8 per channel or fp32 from a packed
   * 4-bit grid) the engine keeps the stored form only and derives the kernel form again for each
   * later compile (setPlan, scoring, calibration): Llama-3.2-1B's q4 blocks held as 0.49 GB of
   * packed grid instead of 0.97 GB of int8, at a requantization per re-plan (~1 s per 100M weights).
   */
  static async fromStored(
    ort: OrtModule,
    backend: Backend,
    model: Omit<TextModel, 'weights'>,
    stored: PreparedWeights,
    setting: WeightsSetting,
    options: Pick<TextEngineOptions, 'attention' | 'plan' | 'decodeKernel'> & { /** The stored blocks are narrowed to this width plan (a width variant): plans keep it, nothing is sliced or measured again. */ width?: VariantWidth } = {},
  ): Promise<TextEngine> {
    const kernel = toKernelForms(stored, setting, backend);
    const engine = new TextEngine(ort, backend, model, kernel, { ...(options.attention ? { attention: options.attention } : {}), ...(options.decodeKernel ? { decodeKernel: options.decodeKernel } : {}), compress: setting });
    const width = options.width;
    if (width) engine.heldWidth = { width: width.plan, layers: new Set(width.layers) };
    // A width variant's own plan by default: its narrowed blocks at its width.
    await engine.setPlan(options.plan ?? (width ? { layers: [...width.layers].sort((a, b) => a - b), width: width.plan } : undefined));
    if (preparedBytes(stored) < preparedBytes(kernel)) {
      engine.heldStored = stored;
      engine.reprepare = async () => toKernelForms(stored, setting, backend);
      engine.prepared = null;
    }
    return engine;
  }

  /**
   * An engine on a variant file read from storage (models/compress/variant-layerwise.ts): only
   * its header is held; every compile reads the blocks of the segment it builds from the file
   * and converts them to `backend`'s kernel form, and calls that need every block at once
   * (scoring, calibration) read the whole file for their duration. A width variant's blocks
   * are narrowed, which the per-segment path does not handle: it goes through `fromStored`.
   */
  static async fromVariantFile(ort: OrtModule, backend: Backend, model: Omit<TextModel, 'weights'>, file: VariantFile, options: Pick<TextEngineOptions, 'attention' | 'plan' | 'decodeKernel'> & { signal?: AbortSignal } = {}): Promise<TextEngine> {
    const setting = file.info.setting;
    if (file.info.width) {
      const { prepared } = readVariant(await readWhole(file.file));
      return TextEngine.fromStored(ort, backend, model, prepared, setting, { ...options, width: file.info.width });
    }
    const engine = new TextEngine(ort, backend, model, null, { ...(options.attention ? { attention: options.attention } : {}), ...(options.decodeKernel ? { decodeKernel: options.decodeKernel } : {}), compress: setting });
    engine.layerwise = (signal) => variantLayerwise(file, backend, signal);
    engine.reprepare = async () => toKernelForms(readVariant(await readWhole(file.file)).prepared, setting, backend);
    await engine.setPlan(options.plan, options.signal);
    return engine;
  }

  /**
   * Later compiles read (and compress, with the engine's setting) `model`'s files: a segment at a
   * time (`layerwise`), or whole for the calls that need every block (`reprepare`); nothing held.
   */
  private compileFrom(model: StreamedTextModel): void {
    const reader = model.weights;
    const prepareOptions = this.compression ? { weights: this.compression, backend: this.backend } : { backend: this.backend };
    this.prepared = null;
    this.heldStored = null;
    this.reprepare = () => prepareWeightsFrom(model.config, reader, prepareOptions);
    this.layerwise = (signal) => prepareLayerwiseFrom(model.config, reader, { ...prepareOptions, ...(signal ? { signal } : {}) });
  }

  /**
   * Lets go of the weights held in JS: later compiles read (and compress) `model`'s files again,
   * a segment at a time, as `create` does for a streamed model. For an engine made by
   * `fromStored` from `model`'s own files once its variant is written (the first load with
   * `compress`): the stored form it kept was for the variant, and a re-plan re-quantizes the
   * source to the same weights (the same per-layer compression, the head from the same rows).
   */
  readFromSource(model: StreamedTextModel): void {
    const setting = this.compression;
    if (this.heldWidth || (setting && (setting.method === 'awq' || setting.sparsity?.method === 'wanda'))) throw new WhittleError('INTERNAL', 'readFromSource: these weights were calibrated or narrowed, the source alone cannot give them again');
    this.compileFrom(model);
    const reader = model.weights;
    // The compiled runner may look tokens up in the held table (which its reader's closure keeps
    // alive with the rest): the source's rows are the same values.
    if (reader.embeddingRows) for (const r of [this.runner, this.dropoutRunner]) r?.readRowsFrom((ids) => reader.embeddingRows!(ids));
  }

  /** Bytes of prepared weights the engine holds in JS besides the compiled sessions (0 once it let an fp32 copy go; the stored form when it keeps only that). */
  get heldWeightBytes(): number {
    return this.prepared ? preparedBytes(this.prepared) : this.heldStored ? preparedBytes(this.heldStored) : 0;
  }

  /** The compiled plan. */
  get plan(): LlamaPlan {
    return this.requireRunner().plan;
  }

  /** Graph nodes per compiled segment. */
  get nodeCounts(): number[] {
    return this.requireRunner().nodeCounts;
  }

  /** The compile options every plan gets: which kernels take decode steps. */
  private get compileLimits(): CompileLimits {
    return { decodeKernel: this.decodeKernel };
  }

  /** Which kernels take the compiled plan's decode steps, the bytes the decode kernels hold and their threads (0 without them). */
  get decode(): { path: 'kernel' | 'onnxruntime'; kernelBytes: number; threads: number } {
    const runner = this.requireRunner();
    return { path: runner.decodePath, kernelBytes: runner.kernelBytes, threads: runner.kernelThreads };
  }

  /** The setting the linear weights were compressed with; undefined while they are fp32. */
  get weights(): WeightsSetting | undefined {
    return this.compression;
  }

  /**
   * The compiled width plan's blocks as a width variant stores them (writeVariant's `width`):
   * the narrowed fp32 weights with FLAP's compensation biases, sliced with the means the pruning
   * measured (measured again only for a plan given to setPlan). fp32 engines only: a compressed
   * one's kernel form is not always a stored form (save the width plan before compressing).
   */
  async widthVariant(signal?: AbortSignal): Promise<{ stored: PreparedWeights; width: VariantWidth }> {
    const plan = this.requireRunner().plan;
    if (!plan.width) throw new WhittleError('INVALID_ARGUMENT', 'the compiled plan has no width to store (prune({ width }) first)');
    if (this.compression || this.heldWidth) throw new WhittleError('UNSUPPORTED', 'a width variant stores the fp32 blocks narrowed from the full model; these weights are compressed or narrowed already');
    const width = plan.width;
    return this.claimed(() => this.withPrepared(async (weights, probe) => ({ stored: await this.narrowed(weights, probe, plan, signal), width: { plan: width, layers: [...plan.layers] } }), signal));
  }

  /** When the held weights are narrowed to a width plan (compressed after pruning, or a width variant): that width and the blocks narrowed, as a variant records them. */
  get narrowedTo(): VariantWidth | undefined {
    const held = this.heldWidth;
    return held ? { plan: held.width, layers: [...held.layers].sort((a, b) => a - b) } : undefined;
  }

  /** The stored form `compress({ keepStored })` made, handed over once (then null). */
  takeStored(): PreparedWeights | null {
    const s = this.keptStored;
    this.keptStored = null;
    return s;
  }

  /**
   * Compresses the linear weights in place (int8 or int4, models/compress/) and recompiles the
   * current plan from them. One way: the fp32 weights are dropped, so that memory holds one copy;
   * load the model again to change the setting. Scoring and calibration then run the compressed
   * weights too, i.e. measure the model as it will run.
   *
   * `setting.sparsity` masks the block linears first (workers/text/sparsify.ts: Wanda measures
   * the fp32 graphs on the calibration text), then quantizes what remains ('f32' keeps it fp32);
   * the kernels stay dense. `keepStored` also keeps the weights' stored form (packed, what a
   * variant file holds) for `takeStored()`, and derives the kernel form from it.
   */
  async compress(setting: WeightsSetting, options: { signal?: AbortSignal; keepStored?: boolean } = {}): Promise<void> {
    const width = this.runner?.plan.width;
    if (width && setting.method === 'awq') {
      // AWQ folds scales over the full-width shapes (awq.ts).
      throw new WhittleError('UNSUPPORTED', "compressing a width-pruned plan with method 'awq' is not implemented yet (rtn / hqq are)");
    }
    if (this.compression) {
      throw new WhittleError('INVALID_ARGUMENT', `the weights are already compressed (${JSON.stringify(this.compression)}); load the model again to compress it differently`);
    }
    throwIfAborted(options.signal);
    await this.claimed(() =>
      this.withPrepared(async (fp32, probe) => {
        const tokens = () => this.tokenIds(DEFAULT_CALIBRATION_TEXT);
        const plan = this.requireRunner().plan;
        // A width plan (issue #14): quantize the narrowed blocks (with FLAP's compensation biases,
        // kept fp32), and hold them: later plans must keep this width (weightsFor).
        const narrowed = width ? { ...probe, weights: await this.narrowed(fp32, probe, plan, options.signal) } : probe;
        // Sparsity (issue #14) before quantization: masks from the fp32 model; quantizing the
        // masked weights fits each group's grid to what remains, and 0 is exact in every form.
        const source = setting.sparsity ? { ...narrowed, weights: await sparsifyWithCalibration(narrowed, tokens(), setting.sparsity, options.signal) } : narrowed;
        // AWQ (issue #13): measures the (masked) fp32 graphs on the calibration text first (awq-compress.ts).
        const quantize = async (s: WeightsSetting) =>
          s.method === 'awq' ? (await compressPreparedAwq(source, s, this.backend, tokens(), { signal: options.signal })).weights : compressPrepared(source.weights, s, this.backend);
        let stored: PreparedWeights | null = null;
        let compressed: PreparedWeights;
        if (options.keepStored) {
          const plan = storagePlan(setting, this.backend, source.weights.config);
          stored = withStoredHead(await quantize(plan.prepare), plan);
          compressed = toKernelForms(stored, setting, this.backend);
        } else compressed = await quantize(setting);
        throwIfAborted(options.signal);
        const fresh: LlamaPlan = { layers: [...plan.layers], exit: plan.exit, ...(width ? { width } : {}) };
        // The fp32 sessions go first, so the fp32 and compressed sessions never coexist; a failed
        // compile restores the fp32 plan.
        await this.runner?.release();
        this.runner = null;
        await this.releaseDropoutRunner();
        let next: PlanRunner;
        try {
          next = await PlanRunner.compile(this.ort, this.backend, compressed, fresh, this.attention, undefined, this.compileLimits);
        } catch (err) {
          this.runner = await PlanRunner.compile(this.ort, this.backend, fp32, fresh, this.attention, undefined, this.compileLimits);
          throw err;
        }
        this.runner = next;
        this.prepared = compressed;
        this.reprepare = null;
        this.layerwise = null;
        this.compression = setting;
        this.keptStored = stored;
        this.heldWidth = width ? { width, layers: new Set(plan.layers) } : null;
        // Exit profiles and step costs were measured on the fp32 graphs.
        this.calibrator = new ExitCalibrator(this.config);
      }, options.signal),
    );
  }

  /** Compiles `plan` (default: full depth) from the weights already in memory and swaps it in. */
  async setPlan(plan: LlamaPlan = fullPlan(this.config), signal?: AbortSignal): Promise<void> {
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'cannot change the plan while generating');
    this.planBeforeSpeculation = null; // a plan the caller chose (generate sets it after its own switch)
    validatePlan(plan, this.config.nLayers);
    if (plan.width) {
      validateWidth(plan.width, this.config.nLayers, this.config.nKvHeads, this.config.hiddenDim);
      const held = this.heldWidth;
      const same = held && JSON.stringify(held.width) === JSON.stringify(plan.width) && plan.layers.every((l) => held.layers.has(l));
      if (this.compression && !same) throw new WhittleError('UNSUPPORTED', 'width pruning slices fp32 weights; these are compressed (prune the width before compressing; a compressed width plan compiles again with the same width and a subset of its blocks)');
    } else if (this.heldWidth) {
      throw new WhittleError('UNSUPPORTED', 'these weights were compressed narrowed to a width plan: plans must keep that width (load again for full width)');
    }
    this.busy = true;
    try {
      const fresh: LlamaPlan = { layers: [...plan.layers], exit: plan.exit, ...(plan.width ? { width: plan.width } : {}) };
      // A full-width plan over weights the engine does not hold compiles from the files one
      // segment at a time; a width plan needs every block at once (its slices are measured).
      const compile = async (p: LlamaPlan, until?: AbortSignal) =>
        !this.prepared && this.layerwise && !p.width
          ? PlanRunner.compile(this.ort, this.backend, await this.layerwise(until), p, this.attention, undefined, this.compileLimits)
          : this.withPrepared(async (weights, probe) => PlanRunner.compile(this.ort, this.backend, await this.narrowed(weights, probe, p), p, this.attention, undefined, this.compileLimits), until);
      const old = this.runner;
      // WebGPU: onnxruntime-web (1.30) keeps a released session's GPU buffers (its weights and
      // what its runs allocated) for as long as any other session lives on the device, and frees
      // them all when the last one goes. Compiling the next plan before releasing the old one
      // therefore left the old plan's buffers behind at every switch (the soak's WebGPU run: +35
      // to +173 live buffers per switch, linear over 150 switches). So on WebGPU the old plan's
      // sessions go first, as compress() does; a failed compile restores the old plan.
      const releaseFirst = this.backend === 'webgpu' && old !== null;
      if (releaseFirst) {
        await old.release();
        this.runner = null;
        await this.releaseDropoutRunner();
      }
      let next: PlanRunner;
      try {
        next = await compile(fresh, signal);
      } catch (err) {
        // Not under `signal`: an aborted switch must still leave the old plan working.
        if (releaseFirst) this.runner = await compile(old.plan);
        throw err;
      }
      this.runner = next;
      // Exit profiles and step costs were measured at the old width.
      if (JSON.stringify(old?.plan.width) !== JSON.stringify(fresh.width)) this.calibrator = new ExitCalibrator(this.config);
      if (!releaseFirst) await old?.release();
      await this.releaseDropoutRunner();
    } finally {
      this.busy = false;
    }
  }

  /**
   * The weights `plan` compiles from: `weights` narrowed to `plan.width` (width-slice.ts), with
   * FLAP's compensation when the plan asks for it; `weights` itself for a full-width plan.
   */
  private async narrowed(weights: PreparedWeights, probe: ProbeSource, plan: LlamaPlan, signal?: AbortSignal): Promise<PreparedWeights> {
    if (!plan.width) return weights;
    // Compressed at this width: the held weights are the narrowed ones already (setPlan checked the width).
    if (this.heldWidth) return weights;
    const means = plan.width.bias ? await this.inputMeans(probe, plan.layers, signal) : undefined;
    return sliceWidth(weights, plan.width, (l) => means?.[l], plan.layers);
  }

  /**
   * o_proj / down_proj input means through `layers` (full-width weights): those of the last
   * width pruning over the same blocks, else measured now on the built-in calibration text (a
   * width plan saved and loaded again).
   */
  private async inputMeans(probe: ProbeSource, layers: readonly number[], signal?: AbortSignal): Promise<(InputMeans | undefined)[]> {
    const key = layers.join(',');
    if (this.widthMeans?.key === key) return this.widthMeans.means;
    const means: (InputMeans | undefined)[] = Array.from({ length: this.config.nLayers }, () => undefined);
    this.widthCalibrationPasses++;
    await collectLinearInputStats(probe, this.tokenIds(DEFAULT_CALIBRATION_TEXT), (l, s) => void (means[l] = { wo: s.wo.mean, down: s.down.mean }), { rows: 0, layers, signal });
    this.widthMeans = { key, means };
    return means;
  }

  /**
   * On-device structured width pruning of the compiled plan's blocks (workers/text/width-prune.ts):
   * measures their o_proj / down_proj inputs on calibration text through probe graphs, keeps the
   * KV groups and FFN channels `method` ranks highest so that `ratio` of those blocks' linear
   * parameters go, and compiles the plan with that `width` (exit and kept blocks unchanged).
   * Scores always come from the full-width blocks, whatever width is compiled now. fp32 weights
   * only (prune the width before compressing). With a signal, stops before the next graph run
   * (ABORTED) and leaves the plan as it was.
   */
  async pruneWidth(options: PruneWidthOptions): Promise<WidthOutcome & { plan: LlamaPlan }> {
    throwIfAborted(options.signal);
    if (this.heldWidth) throw new WhittleError('UNSUPPORTED', 'these weights are narrowed to a width plan already (a width variant, or compressed after pruning): load the full model to prune again');
    if (this.compression) throw new WhittleError('UNSUPPORTED', 'width pruning slices fp32 weights; these are compressed (prune the width before compressing)');
    const plan = this.requireRunner().plan;
    const tokens = this.tokenIds(options.calibration ?? DEFAULT_CALIBRATION_TEXT);
    this.widthCalibrationPasses++;
    const outcome = await this.claimed(() => this.withPrepared((_, probe) => scoreWidth(probe, tokens, { ratio: options.ratio, method: options.method, layers: plan.layers, standardization: options.standardization, signal: options.signal, ...(options.keep ? { keep: options.keep } : {}) }), options.signal));
    throwIfAborted(options.signal);
    this.widthMeans = { key: plan.layers.join(','), means: outcome.means };
    await this.setPlan({ layers: [...plan.layers], exit: plan.exit, width: outcome.width });
    return { ...outcome, plan: this.plan };
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
    if (typeof text !== 'string') return [...text];
    return this.tokenizer.prependsBos ? [this.bosId, ...this.tokenizer.encode(text)] : this.tokenizer.encode(text);
  }

  /**
   * Teacher-forced perplexity of `text` (BOS prepended) or token ids under the compiled plan (its
   * full path, not the exit): exp(mean -log p(token[t+1] | tokens[..t])), fed one token per step so
   * it runs the same graphs generation does. What a pruned plan costs in quality.
   */
  async perplexity(text: string | readonly number[], options: PerplexityOptions = {}): Promise<{ perplexity: number; predictions: number }> {
    const ids = this.tokenIds(text);
    if (ids.length < 2) throw new WhittleError('INVALID_ARGUMENT', 'perplexity needs at least 2 tokens');
    // The last token is only predicted, never fed: ids.length - 1 positions run.
    if (ids.length - 1 > this.config.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `${ids.length} tokens exceed the model's context of ${this.config.maxSeqLen} (+1)`);
    throwIfAborted(options.signal);
    const checkpoint = new Checkpoint(options.signal);
    return this.withRunner(async (runner) => {
      let nll = 0;
      for (let t = 0; t + 1 < ids.length; t++) {
        await checkpoint.pass();
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
   * and sampling temperature. With a signal, stops within one forward pass (ABORTED).
   */
  async calibrateExits(options: CalibrateExitsOptions = {}): Promise<ExitCalibration> {
    const layers = this.requireRunner().plan.layers;
    // Profiling runs onnxruntime sessions of its own: never under a running generation.
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is busy (generating or compiling); calibrate when idle');
    throwIfAborted(options.signal);
    const greedy = options.greedy ?? true;
    const temperature = greedy ? 1 : (options.temperature ?? 1);
    const calibration = options.calibration ?? DEFAULT_CALIBRATION_TEXT;
    const textKey = options.calibration === undefined ? 'default' : JSON.stringify(options.calibration);
    const plan = this.requireRunner().plan;
    const profile = await this.claimed(async () =>
      this.calibrator.cachedProfile(layers, temperature, textKey) ??
      this.withPrepared(async (weights, probe) => {
        // Profile the blocks at the width they run with.
        const narrow = await this.narrowed(weights, probe, plan, options.signal);
        return this.calibrator.profile({ ...probe, weights: narrow }, layers, this.tokenIds(calibration), temperature, textKey, options.signal);
      }, options.signal),
    );
    const stepCost = this.calibrator.cachedStepCost(this.requireRunner().plan) ?? (await this.withRunner((runner) => this.calibrator.stepCost(runner, options.signal)));
    const choice = chooseExit(profile, { greedy, draft: options.draft, stepCost });
    return { profile, choice, stepCost };
  }

  /**
   * Depth-pruning block scores of the full-depth model (whatever plan is compiled) on
   * calibration text (BOS prepended) or token ids, split into windows of the context: block
   * influence, angular distance, and unless `perplexity: false` the perplexity with each block
   * removed and at full depth (models/llama/scoring.ts; computed through probe graphs compiled
   * for this call and released after, block-scoring.ts). With a signal, stops before the next
   * graph run (ABORTED). One call at a time, like generation.
   */
  async scoreBlocks(calibration: string | readonly number[], options: ScoreBlocksOptions = {}): Promise<BlockScores> {
    throwIfAborted(options.signal);
    const tokens = this.tokenIds(calibration);
    return this.claimed(() => this.withPrepared((_, probe) => scoreBlocksOnnx(new ProbeRunner(probe, options.signal), this.config, tokens, { perplexity: options.perplexity }), options.signal));
  }

  /**
   * Streams generated tokens for `prompt` (text, or token ids used as given). Emits one `token`
   * event per generated token (its `text` is the text that became final with it: '' while a
   * multi-byte character or a possible stop string is incomplete), then one `done` event with the
   * whole text, the `tail` no token carried, and timing stats; see TextEvent for the exactness
   * guarantee. One generation at a time per engine.
   */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<TextEvent, void, undefined> {
    const t0 = performance.now();
    const c = this.config;
    this.requireRunner();
    this.checkExit(options.exit);
    const rp = options.repetitionPenalty;
    if (rp !== undefined && !(Number.isFinite(rp) && rp > 0)) throw new WhittleError('INVALID_ARGUMENT', `repetitionPenalty must be a positive number, got ${rp}`);
    const maxTokens = options.maxTokens ?? 128;
    if (!Number.isInteger(maxTokens) || maxTokens < 0) throw new WhittleError('INVALID_ARGUMENT', `maxTokens must be a non-negative integer, got ${maxTokens}`);
    const promptIds = this.promptIds(prompt, options.addBos ?? this.tokenizer.prependsBos);
    if (promptIds.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'empty prompt (and no BOS)');
    if (promptIds.length > c.maxSeqLen) {
      throw new WhittleError('INVALID_ARGUMENT', `the prompt is ${promptIds.length} tokens; the model's context is ${c.maxSeqLen}`, { promptTokens: promptIds.length, maxSeqLen: c.maxSeqLen });
    }
    const dropoutSetup = options.dropout !== undefined ? resolveDropout(options.dropout, promptIds, this.bosId, c.vocabSize, options.seed ?? 0x5eed) : null;
    // members: 0 or no marked context is plain decoding (same graphs, same tokens).
    const dropout = dropoutSetup && dropoutSetup.members > 0 && dropoutSetup.positions.length > 0 ? dropoutSetup : null;
    if (dropout && options.speculate) throw new WhittleError('INVALID_ARGUMENT', 'dropout and speculate are exclusive');
    if (dropout && options.exit) throw new WhittleError('INVALID_ARGUMENT', 'dropout decodes through the whole plan; it does not take exit');
    const specSetup = options.speculate ? await this.speculationSetup(options) : null;
    const planned = await this.planFor(specSetup);
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is busy (one generation, scoring or calibration at a time)');
    const runner = dropout ? await this.dropoutRunnerFor(planned.plan) : planned;
    const dropoutRun: DropoutRun = { ensemble: null, uncertaintyMs: 0 };
    const stopTokens = new Set(options.stopTokens ?? [c.eosTokenId]);
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

    const tokens: number[] = [];
    const history = [...promptIds];
    const streamer = new TextStreamer(this.tokenizer, promptIds, options.stopStrings ?? []);
    let stopReason: GenerateStats['stopReason'] = 'max-tokens';
    let prefillMs = 0;
    let decodeStart = 0;
    let ttft = 0;
    const counters = newSpecCounters();
    const adaptive = specSetup?.draft === 'auto' ? new AdaptiveDraft() : null;
    try {
      runner.reset();
      throwIfAborted(signal);
      const pick = (logits: Float32Array, hist: readonly number[]) => sample(logits, options, hist, rng);
      const onPrefill = () => (prefillMs = performance.now() - t0);
      const fixedDraft = specSetup && specSetup.draft !== 'auto' ? specSetup.draft : 1;
      const source = dropout
        ? dropoutTokens(runner, promptIds, history, options, dropout, dropoutRun, c.maxSeqLen, signal, onPrefill)
        : specSetup
        ? speculativeTokens(runner, promptIds, history, options, rng, () => adaptive?.next ?? fixedDraft, counters, (r) => adaptive?.observe(r), c.maxSeqLen, signal, onPrefill)
        : plainTokens(runner, promptIds, history, pick, c.maxSeqLen, { exit: options.exit, signal }, onPrefill);
      for (;;) {
        if (tokens.length >= maxTokens) break;
        const next = await source.next();
        if (next.done) {
          stopReason = 'context';
          break;
        }
        const { token, origin, rejected, dropout: members } = next.value;
        if (stopTokens.has(token)) {
          stopReason = 'stop-token';
          break;
        }
        // Rejected drafts stood where this token stands: their text in that context.
        const rejectedText = rejected ? streamer.peek(rejected) : '';
        tokens.push(token);
        history.push(token);
        const { text, stopped } = streamer.push(token);
        if (tokens.length === 1) {
          ttft = performance.now() - t0;
          decodeStart = performance.now();
        }
        const event: TextEvent = { type: 'token', token, text };
        if (origin) event.origin = origin;
        if (rejected) event.rejected = { tokens: rejected, text: rejectedText };
        if (members) event.dropout = members;
        yield event;
        if (stopped) {
          stopReason = 'stop-string';
          break;
        }
        throwIfAborted(signal);
      }
      await source.return(undefined);
      const tail = streamer.finish();
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
      if (specSetup) stats.speculation = speculationStats(counters, specSetup);
      if (dropoutRun.ensemble) stats.dropout = dropoutRun.ensemble.stats(dropoutRun.uncertaintyMs);
      yield { type: 'done', tokens, text: streamer.text, tail, stats };
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
    await this.releaseDropoutRunner();
  }

  private async releaseDropoutRunner(): Promise<void> {
    const d = this.dropoutRunner;
    this.dropoutRunner = null;
    await d?.release();
  }

  /**
   * The compiled plan's dropout variant (per-row positions and masks, chosen logit rows). 'gqa'
   * takes no mask, so that engine's variant uses 'plain' attention.
   */
  private async dropoutRunnerFor(plan: LlamaPlan): Promise<PlanRunner> {
    if (this.dropoutRunner) return this.dropoutRunner;
    const attention = this.attention === 'gqa' ? 'plain' : this.attention;
    const compiled = await this.withPrepared((weights) => PlanRunner.compile(this.ort, this.backend, weights, { layers: [...plan.layers], exit: plan.exit }, attention, { dropout: true }, { decodeKernel: 'onnxruntime' }));
    // setPlan/compress may have run meanwhile (they release the variant): keep only a current one.
    if (this.runner?.plan !== plan) {
      await compiled.release();
      throw new WhittleError('INVALID_ARGUMENT', 'the plan changed while dropout decoding compiled its graphs');
    }
    this.dropoutRunner = compiled;
    return compiled;
  }

  /** Checks `speculate` and resolves its exit ('auto': calibrated on the compiled plan's layers). */
  private async speculationSetup(options: GenerateOptions): Promise<SpeculationSetup> {
    const speculate = options.speculate ?? {};
    const draft = speculate.draft ?? 'auto';
    if (draft !== 'auto' && (!Number.isInteger(draft) || draft < 1)) throw new WhittleError('INVALID_ARGUMENT', `speculate.draft must be a positive integer or 'auto', got ${draft}`);
    if (options.exit) throw new WhittleError('INVALID_ARGUMENT', 'speculate and exit are exclusive: speculation already drafts through the exit');
    const p = this.requireRunner().plan;
    let exit = speculate.exit ?? p.exit ?? 'auto';
    let calibration: SpeculationSetup['calibration'];
    if (exit === 'auto') {
      if (p.layers.length < 2) throw new WhittleError('INVALID_ARGUMENT', 'speculative decoding needs a plan with at least two layers');
      const { profile, choice } = await this.calibrateExits({ greedy: isGreedy(options), temperature: options.temperature, draft: draft === 'auto' ? undefined : draft });
      exit = choice.exit;
      calibration = { predictedSpeedup: choice.speedup, ms: profile.ms };
    }
    if (!Number.isInteger(exit) || exit < 1 || exit >= p.layers.length) {
      throw new WhittleError('INVALID_ARGUMENT', `speculate.exit must leave at least one layer to verify with: 1..${p.layers.length - 1} (got ${exit})`, { exit });
    }
    return { exit, draft, ...(calibration ? { calibration } : {}) };
  }

  /**
   * The runner to generate with: the compiled plan recompiled with the speculation's exit, or
   * back to the caller's plan after a speculative generation switched it.
   */
  private async planFor(specSetup: SpeculationSetup | null): Promise<PlanRunner> {
    // Calibration awaited: another call (setPlan, prune) may have swapped the plan meanwhile.
    const runner = this.requireRunner();
    if (specSetup && runner.plan.exit !== specSetup.exit) {
      if (specSetup.exit >= runner.plan.layers.length) throw new WhittleError('INVALID_ARGUMENT', `speculate.exit ${specSetup.exit} leaves no layer to verify with in plan ${JSON.stringify(runner.plan)}`);
      const before = this.planBeforeSpeculation ?? runner.plan;
      await this.setPlan({ ...runner.plan, layers: [...runner.plan.layers], exit: specSetup.exit });
      this.planBeforeSpeculation = before;
    } else if (!specSetup && this.planBeforeSpeculation) {
      // The exit was compiled only to speculate: go back to the caller's plan (for a plain one,
      // one run per token instead of two on the split plan).
      await this.setPlan(this.planBeforeSpeculation);
    }
    return this.requireRunner();
  }

  /**
   * Prompt ids: text is encoded and gets BOS (when `addBos`); ids are used as given (BOS added
   * unless already first); a conversation goes through the model's chat template, which writes
   * its own special tokens, then is encoded as is (transformers' `apply_chat_template`).
   */
  private promptIds(prompt: Prompt, addBos: boolean): number[] {
    const bos = this.bosId;
    if (typeof prompt === 'string') return addBos ? [bos, ...this.tokenizer.encode(prompt)] : this.tokenizer.encode(prompt);
    if (prompt.length > 0 && typeof prompt[0] === 'object') {
      if (!this.chatTemplate) throw new WhittleError('UNSUPPORTED', "this model has no chat template (no chat_template in its tokenizer_config.json); pass text or token ids instead");
      return this.tokenizer.encode(this.chatTemplate.render(prompt as readonly ChatMessage[]));
    }
    const ids = [...(prompt as readonly number[])];
    return addBos && ids[0] !== bos ? [bos, ...ids] : ids;
  }

  /** BOS as the tokenizer writes it (its post-processor's leading token, or tokenizer_config's bos_token), else config.json's. */
  private get bosId(): number {
    return this.tokenizer.bosId ?? this.config.bosTokenId;
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

  /**
   * Runs `fn` with the engine claimed: probe graphs (scoring, exit profiles) are onnxruntime
   * sessions besides the plan's, and nothing promises that runs of two sessions may interleave
   * (WebGPU shares one device queue), so a probe call and a generation never overlap.
   */
  private async claimed<T>(fn: () => Promise<T>): Promise<T> {
    this.claim();
    try {
      return await fn();
    } finally {
      this.busy = false;
    }
  }

  private claim(): void {
    if (this.busy) throw new WhittleError('INVALID_ARGUMENT', 'the engine is busy (one generation, scoring or calibration at a time)');
    this.busy = true;
  }
}
