/**
 * A language model running in its own worker: streaming generation, plans (depth pruning,
 * early exit) recompiled from weights already in the worker, AbortSignal everywhere.
 *
 * @example
 * const lm = await w.text('stories260K');
 * for await (const ev of lm.generate('Once upon a time', { maxTokens: 64, signal })) {
 *   if (ev.type === 'token') out.textContent += ev.text;
 *   else { out.textContent += ev.tail; console.log(ev.stats.decodeTokensPerSecond); } // tail: text held back to the end
 * }
 * await lm.setPlan({ layers: [0, 1, 3, 4] }); // drop block 2: no download, no re-read
 */
import * as Comlink from 'comlink';
import type { LlamaPlan, WeightsSetting, WidthPlan } from '../models/llama/types.ts';
import type { AttentionKind } from '../models/llama/graph.ts';
import type { ChatMessage, DropoutOptions, DropoutStats, GenerateOptions, Prompt, SpeculateOptions, SpeculationStats, TextEvent } from '../core/text-types.ts';
import type { TextModelInfo, TextModelSource, TextService } from '../workers/text/service.ts';
import type { CalibrateExitsOptions, CompressTargetOptions, CompressTargetResult, PruneOptions, PruneResult, WidthPruneOptions, WidthPruneResult } from '../workers/text/service.ts';
import type { CompressTarget, TargetCandidate } from '../workers/text/target-prune.ts';
import type { ExitChoice, ExitProfile, StepCost } from '../workers/text/exit-calibration.ts';
import type { RuntimeConfig } from '../workers/ort/runtime.ts';
import type { DecodeKernelChoice } from '../workers/text/runner.ts';
import { WhittleError, throwIfAborted } from '../core/errors.ts';
import { startLoaded, startedAfterLoss, type PinnedWorker, type SpawnWorker, type WorkerClient } from './client/worker-client.ts';

export type { TextEvent, GenerateOptions, TextModelInfo, LlamaPlan, WidthPlan, DecodeKernelChoice };
export type { Prompt, ChatMessage, PruneOptions, PruneResult, WidthPruneOptions, WidthPruneResult, CompressTarget, CompressTargetOptions, CompressTargetResult, TargetCandidate, CalibrateExitsOptions, ExitChoice, ExitProfile, SpeculateOptions, SpeculationStats, DropoutOptions, DropoutStats };

/**
 * What to compile first when a text model loads: a plan (pruned blocks, early exit) and the
 * attention implementation. A plan saved with the cached model is used when none is given.
 *
 * @example
 * const lm = await w.text('stories-layerskip', { plan: { layers: [0, 1, 2, 3, 5, 6, 7], exit: 3 }, attention: 'auto' });
 */
export interface TextLoadOptions {
  plan?: LlamaPlan;
  attention?: AttentionKind | 'auto';
  /**
   * Which kernels run decode steps on the WASM backend. Default 'auto': Whittle's own int8
   * WebAssembly SIMD kernels when the weights are int8 (`compress: { weights: 'q8' }`, or q4 on
   * the int8 kernel) and their copy of the weights is at most 512 MiB (they keep one beside
   * onnxruntime's; `lm.info.decode.kernelBytes` says how much), else onnxruntime's graphs.
   * 'kernel' takes them whatever the copy costs, 'onnxruntime' never. fp32, 4-bit and sparse
   * weights and WebGPU always decode on onnxruntime; `lm.info.decode.path` says which ran.
   */
  decodeKernel?: DecodeKernelChoice;
  /** Compress the linear weights as the model loads (int8 / int4, see `TextModel.compress`). */
  compress?: WeightsSetting;
}

/** Transferable copies of the model's files: a fresh set per worker (transfers detach them). */
export type SourceFactory = () => Promise<TextModelSource>;

/**
 * Saves a plan with the cached model (null clears it): how the handle reaches the store it came
 * from. `exportWidth`, for a width plan the worker compiled from fp32 weights, exports its
 * narrowed blocks (a width variant) to save beside it.
 */
export type SavePlan = (plan: LlamaPlan | null, exportWidth?: (source: { id: string; revision: string; configSha256?: string }) => Promise<ArrayBuffer[]>) => Promise<void>;

export function transferablesOf(source: TextModelSource): ArrayBuffer[] {
  // Blobs are cloned by reference (the bytes stay on disk), only ArrayBuffers are transferred.
  return source.format === 'llama2c' ? [source.checkpoint, source.tokenizer] : Object.values(source.files).filter((f): f is ArrayBuffer => f instanceof ArrayBuffer);
}

/**
 * A language model in its own worker (get one from `Whittle.text()`): streaming generation,
 * plans recompiled from the weights already in the worker, pruning, perplexity, speculation.
 *
 * @example
 * const lm = await w.text('stories-layerskip');
 * const { text, stats } = await lm.complete('Once upon a time', { maxTokens: 48, speculate: {} });
 * await lm.prune({ remove: 2 });
 * lm.dispose();
 */
export class TextModel {
  private plan: LlamaPlan | undefined;
  /** The last generation speculated (see planMayChange). */
  private speculated = false;
  /** Ids for cancellable calls (TextService's JobOptions); unique per handle, the worker is this handle's alone. */
  private nextJob = 1;

  private constructor(
    private readonly client: WorkerClient<TextService>,
    public info: TextModelInfo,
    readonly source: 'cache' | 'network',
    private readonly save: SavePlan | undefined,
  ) {
    this.plan = info.plan;
  }

  /** @internal use Whittle.text() */
  static async start(spawn: SpawnWorker, runtime: RuntimeConfig, files: SourceFactory, options: TextLoadOptions & { keepVariant?: boolean }, label: string, source: 'cache' | 'network', savePlan?: SavePlan): Promise<TextModel> {
    let self: TextModel | null = null;
    // Replayed on a fresh worker after a death, with the plan in force at that time.
    const { client, info } = await startLoaded<TextService, TextModelInfo>({
      spawn,
      label: `text:${label}`,
      load: async (remote) => {
        await remote.init(runtime);
        const src = await files();
        // A replay after a worker death restores what the handle had: its plan and compression.
        const compress = self?.info.weights ?? options.compress;
        // [variant] The stored form is kept for the first load only: a replay has no variant to save.
        return remote.load(Comlink.transfer(src, transferablesOf(src)), { ...options, plan: self?.plan ?? options.plan, ...(compress ? { compress } : {}), keepVariant: options.keepVariant === true && !self });
      },
      onReload: (reloaded) => {
        if (self) self.info = reloaded;
      },
    });
    self = new TextModel(client, info, source, savePlan);
    return self;
  }

  /**
   * The compressed variant this model was loaded from (its store id, e.g.
   * 'stories-layerskip#q4-g32-rtn'), when a load with `compress` found one or made one (the first
   * load compresses into the store, then loads from there), or the width variant
   * ('stories-layerskip#width-1a2b3c4d') a saved width plan restored; undefined when it loaded
   * the source weights.
   */
  variant: string | undefined;

  /**
   * @internal [variant] The loaded weights as model.whittle.safetensors parts (after a load with
   * `keepVariant`); Whittle.text() saves them in the store.
   */
  exportVariant(source: { id: string; revision: string; configSha256?: string }): Promise<ArrayBuffer[]> {
    return this.client.call((r) => r.exportVariant(source));
  }

  /** Streams `{ type: 'token' }` events, then one `{ type: 'done', stats }`. */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<TextEvent, void, undefined> {
    const { signal, ...rest } = options;
    throwIfAborted(signal);
    const refresh = this.planMayChange(rest);
    // The stream lives in one worker: reading and cancelling it go to that worker only. After
    // its death they reject with WORKER_DIED instead of respawning a worker (and reloading the
    // model) for a stream the new one never had.
    const { worker, result: id } = await this.pinned((r) => r.start(prompt, rest));
    let finished = false;
    const cancel = () => void worker.call((r) => r.cancel(id)).catch(() => undefined);
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      while (!finished) {
        // The abort already cancelled the stream, and the worker forgot it: do not ask for more.
        throwIfAborted(signal);
        const { events, done } = await worker.call((r) => r.next(id));
        finished = done;
        for (const e of events) {
          // Events already computed when the signal fired are dropped, like fetch's body after abort.
          throwIfAborted(signal);
          yield e;
        }
      }
    } finally {
      signal?.removeEventListener('abort', cancel);
      if (!finished && worker.alive) cancel(); // the consumer stopped early (break/return) or an error: stop the worker too
      if (refresh) await this.refreshInfo(worker);
    }
  }

  /**
   * Runs a generation to the end inside the worker and returns its `done` event (one round
   * trip; with a signal it streams instead, so an abort still stops it within a step).
   */
  async complete(prompt: Prompt, options: GenerateOptions = {}): Promise<Extract<TextEvent, { type: 'done' }>> {
    if (!options.signal) {
      const { signal: _unused, ...rest } = options;
      const refresh = this.planMayChange(rest);
      let worker: PinnedWorker<TextService> | undefined;
      try {
        const run = await this.pinned((r) => r.complete(prompt, rest), (w) => (worker = w));
        return run.result;
      } finally {
        if (refresh && worker) await this.refreshInfo(worker);
      }
    }
    for await (const ev of this.generate(prompt, options)) if (ev.type === 'done') return ev;
    throw new WhittleError('INTERNAL', 'generation ended without a done event');
  }

  /**
   * Starts a call on the live worker and keeps that worker for the calls that follow it (a
   * stream's next chunks, a refresh). If the call reached a worker whose device was already lost
   * (startedAfterLoss: nothing of it ran), it starts once more on a fresh worker, as
   * WorkerClient.call does; a call that may have run on the lost device keeps its DEVICE_LOST.
   */
  private async pinned<R>(
    fn: (remote: Comlink.Remote<TextService>) => Promise<R>,
    onPin?: (worker: PinnedWorker<TextService>) => void,
  ): Promise<{ worker: PinnedWorker<TextService>; result: R }> {
    for (let attempt = 0; ; attempt++) {
      const worker = await this.client.pin();
      onPin?.(worker);
      try {
        return { worker, result: await worker.call(fn) };
      } catch (err) {
        if (attempt > 0 || !startedAfterLoss(err)) throw err;
      }
    }
  }

  /**
   * Whether this generation may recompile the worker's plan: a speculative one (to its exit), or
   * the first plain one after it (back to the caller's plan).
   */
  private planMayChange(options: Omit<GenerateOptions, 'signal'>): boolean {
    const may = options.speculate !== undefined || this.speculated;
    this.speculated = options.speculate !== undefined;
    return may;
  }

  /**
   * The worker that ran a generation may have recompiled its plan (even if the generation then
   * failed or was cut short): re-read info so `info` and a respawn's replay stay in step. Asked
   * of that worker only: if it died, the next real call respawns one with the last known plan
   * (and onReload refreshes info), so starting one here would only reload the model early.
   */
  private async refreshInfo(worker: PinnedWorker<TextService>): Promise<void> {
    try {
      this.info = await worker.call((r) => r.describe());
      this.plan = this.info.plan;
    } catch {
      // That worker died or was disposed.
    }
  }

  /** Recompiles the plan from the weights already in the worker. */
  async setPlan(plan: LlamaPlan): Promise<TextModelInfo> {
    this.info = await this.client.call((r) => r.setPlan(plan));
    this.plan = this.info.plan;
    return this.info;
  }

  /**
   * Compresses the linear weights on the device, int8 or int4 (models/compress/), and recompiles
   * the current plan: no download. One way: the worker drops the fp32 weights so that memory
   * holds one copy; load the model again to change the setting. On WASM 'q8' runs onnxruntime's
   * int8 kernel (DynamicQuantizeMatMul) and 'q4' (WASM has no fast 4-bit kernel) runs its 4-bit
   * grid dequantized once to fp32 for small models and requantized to int8 per channel for large
   * ones (a quarter of the memory; models/compress/kernel-choice.ts); on WebGPU both run MatMulNBits.
   * `sparsity` first zeroes half (or `ratio`) of every block linear's weights, by Wanda's
   * |W| * ||x|| from the built-in calibration text ('2:4': 2 of every 4 inputs; 'unstructured'),
   * then quantizes what remains ('f32' keeps it fp32). The kernels stay dense: no speed-up, but a
   * load with `compress: { ..., sparsity }` caches a sparse variant that is smaller to store.
   *
   * @example
   * await lm.compress({ linear: 'q8' });
   * // or: await lm.compress({ linear: 'q8', sparsity: { pattern: '2:4' } });
   * console.log(lm.info.weights, await lm.perplexity('Held-out text.'));
   */
  async compress(setting: WeightsSetting, options?: { signal?: AbortSignal }): Promise<TextModelInfo>;
  /**
   * Reaches a target on the device (Sheared LLaMA's idea of a target, one-shot: no learned masks,
   * no training): `{ params: 0.5 }` keeps half of the blocks' linear parameters, `{ layers,
   * heads, ffn }` a block shape. A small grid of depth / width splits (depth pruning by the
   * blocks' calibration scores, then FLAP or Wanda-sp width pruning of what remains) is compiled
   * and measured, and the split with the lowest calibration perplexity stays compiled. fp32
   * full-width weights (reach the shape first, then compress); on an error or abort the plan
   * stays as it was.
   *
   * @example
   * const { plan, params, candidates, chosen } = await lm.compress({ target: { params: 0.5 } });
   * console.log(plan, params.after / params.before, candidates[chosen]!.perplexity);
   */
  async compress(target: CompressTargetOptions, options?: { signal?: AbortSignal }): Promise<CompressTargetResult>;
  async compress(setting: WeightsSetting | CompressTargetOptions, options: { signal?: AbortSignal } = {}): Promise<TextModelInfo | CompressTargetResult> {
    if ('target' in setting) {
      const result = await this.cancellable(options.signal, (r, job) => r.compressTarget({ ...setting, job }));
      this.info = result.info;
      this.plan = result.info.plan;
      return result;
    }
    this.info = await this.cancellable(options.signal, (r, job) => r.compress(setting, { job }));
    return this.info;
  }

  /**
   * On-device depth pruning (no download, no re-read): the worker scores every block on the
   * calibration text, drops the `remove` least important and recompiles.
   *
   * @example
   * const { removed, scores } = await lm.prune({ remove: 1, criterion: 'influence' });
   */
  async prune(options: PruneOptions): Promise<PruneResult>;
  /**
   * On-device structured width pruning (no download): the worker measures the plan's blocks on
   * calibration text and keeps the KV heads and FFN channels FLAP (default) or Wanda-sp ranks
   * highest, so that `width` of the blocks' weights go; composes with depth pruning and early exit.
   *
   * @example
   * await lm.prune({ remove: 1 });                          // depth first, if wanted
   * const { params } = await lm.prune({ width: 0.2, method: 'flap' });
   */
  async prune(options: WidthPruneOptions): Promise<WidthPruneResult>;
  async prune(options: PruneOptions | WidthPruneOptions): Promise<PruneResult | WidthPruneResult> {
    const { signal, ...rest } = options;
    const result = await this.cancellable<PruneResult | WidthPruneResult>(signal, (r, job) => ('width' in rest ? r.pruneWidth({ ...rest, job }) : r.prune({ ...rest, job })));
    this.info = result.info;
    this.plan = result.info.plan;
    return result;
  }

  /**
   * Saves `plan` (e.g. the one `prune` compiled) with the cached model, so the next
   * `w.text(id)` starts with it: no download, no re-scoring. A width plan (`prune({ width })`)
   * compiled now from the fp32 weights is saved with its narrowed blocks (a width variant, see
   * `variant`): the next load reads those instead of slicing and measuring the source again. `null` forgets it.
   *
   * @example
   * const { plan } = await lm.prune({ remove: 2 });
   * await lm.savePlan(plan);
   */
  async savePlan(plan: LlamaPlan | null): Promise<void> {
    if (!this.save) throw new WhittleError('UNSUPPORTED', 'this model was not loaded from the model store; it has nowhere to save a plan');
    // The width plan compiled now, from fp32 weights of the source: its narrowed blocks are saved
    // too (a width variant), so the next load neither slices nor measures them again.
    const compiled = this.plan;
    const sameBlocks = (a: LlamaPlan, b: LlamaPlan) => JSON.stringify([a.layers, a.width]) === JSON.stringify([b.layers, b.width]);
    const fromFp32Source = this.variant === undefined && this.info.weights === undefined;
    const exportWidth = plan?.width && compiled && fromFp32Source && sameBlocks(plan, compiled) ? (source: { id: string; revision: string; configSha256?: string }) => this.client.call((r) => r.exportWidthVariant(source)) : undefined;
    await this.save(plan, exportWidth);
  }

  /**
   * Scores every early exit of the current plan on calibration text (agreement with the full
   * model, expected acceptance) and returns the exit and draft length with the best expected
   * speed-up: what `generate(p, { speculate: { exit: 'auto' } })` picks.
   *
   * @example
   * const { profile, choice } = await lm.calibrateExits();
   * console.log(profile.agreement, choice.exit, choice.speedup);
   */
  calibrateExits(options: CalibrateExitsOptions = {}): Promise<{ profile: ExitProfile; choice: ExitChoice; stepCost: StepCost }> {
    const { signal, ...rest } = options;
    return this.cancellable(signal, (r, job) => r.calibrateExits({ ...rest, job }));
  }

  /**
   * Teacher-forced perplexity of `text` (BOS prepended) or token ids under the current plan: what
   * a pruned plan costs in quality, measured on your own held-out text.
   */
  perplexity(text: string | number[], options: { signal?: AbortSignal } = {}): Promise<{ perplexity: number; predictions: number }> {
    return this.cancellable(options.signal, (r, job) => r.perplexity(text, { job }));
  }

  /** Logits [vocab] after a fresh prefill of `tokens` (through the exit when `exit`). */
  logits(tokens: number[], options: { exit?: boolean } = {}): Promise<Float32Array> {
    return this.client.call((r) => r.logits(tokens, options));
  }

  /**
   * A worker call that `signal` can cancel, as generate() cancels a stream: the call carries a
   * job id and an abort sends `cancelJob(id)`, which stops it within one step or forward pass
   * (it then rejects with ABORTED, after the worker is idle again, so the next call finds it free).
   */
  private async cancellable<T>(signal: AbortSignal | undefined, fn: (remote: Comlink.Remote<TextService>, job: number | undefined) => Promise<T>): Promise<T> {
    throwIfAborted(signal);
    if (!signal) return this.client.call((r) => fn(r, undefined));
    const job = this.nextJob++;
    // The job runs in one worker; an abort after its death must not start another to cancel it.
    let worker: PinnedWorker<TextService> | undefined;
    const cancel = () => void worker?.call((r) => r.cancelJob(job)).catch(() => undefined);
    signal.addEventListener('abort', cancel, { once: true });
    try {
      const onPin = (w: PinnedWorker<TextService>) => {
        throwIfAborted(signal); // an abort while a retry looked for a fresh worker
        worker = w;
      };
      return (await this.pinned((r) => fn(r, job), onPin)).result;
    } finally {
      signal.removeEventListener('abort', cancel);
    }
  }

  /**
   * Token ids of `text` as the model's tokenizer splits it (no BOS added).
   *
   * @example
   * const ids = await lm.encode('Once upon a time');
   */
  encode(text: string): Promise<number[]> {
    return this.client.call((r) => r.encode(text));
  }

  /**
   * The text of token ids as the model's tokenizer joins them: special tokens left out unless
   * `skipSpecial: false`. For ids the SDK reports (a stream's tokens, dropout decoding's votes and
   * dropped context positions' tokens). An id outside the vocabulary is INVALID_ARGUMENT.
   *
   * @example
   * const piece = await lm.decode([ev.dropout.votes[0]]);
   */
  decode(ids: readonly number[], options: { skipSpecial?: boolean } = {}): Promise<string> {
    const list = [...ids];
    const skipSpecial = options.skipSpecial ?? true;
    return this.client.call((r) => r.decode(list, skipSpecial));
  }

  worker(): Promise<Worker> {
    return this.client.worker();
  }

  dispose(): void {
    this.client.dispose();
  }
}
