/**
 * A language model running in its own worker: streaming generation, plans (depth pruning,
 * early exit) recompiled from weights already in the worker, AbortSignal everywhere.
 *
 * @example
 * const lm = await w.text('stories260K');
 * for await (const ev of lm.generate('Once upon a time', { maxTokens: 64, signal })) {
 *   if (ev.type === 'token') out.textContent += ev.text;
 *   else console.log(ev.stats.decodeTokensPerSecond);
 * }
 * await lm.setPlan({ layers: [0, 1, 3, 4] }); // drop block 2: no download, no re-read
 */
import * as Comlink from 'comlink';
import type { LlamaPlan } from '../models/llama/types.ts';
import type { AttentionKind } from '../models/llama/graph.ts';
import type { GenerateOptions, TextEvent } from '../workers/text/engine.ts';
import type { TextModelInfo, TextModelSource, TextService } from '../workers/text/service.ts';
import type { CalibrateExitsOptions, PruneOptions, PruneResult } from '../workers/text/service.ts';
import type { ExitChoice, ExitProfile, StepCost } from '../workers/text/exit-calibration.ts';
import type { Prompt, SpeculateOptions, SpeculationStats } from '../workers/text/engine.ts';
import type { ChatMessage } from '../workers/text/chat.ts';
import type { RuntimeConfig } from '../workers/ort/runtime.ts';
import { WhittleError, throwIfAborted } from '../core/errors.ts';
import { startLoaded, type SpawnWorker, type WorkerClient } from './client/worker-client.ts';

export type { TextEvent, GenerateOptions, TextModelInfo, LlamaPlan };
export type { Prompt, ChatMessage, PruneOptions, PruneResult, CalibrateExitsOptions, ExitChoice, ExitProfile, SpeculateOptions, SpeculationStats };

export interface TextLoadOptions {
  plan?: LlamaPlan;
  attention?: AttentionKind | 'auto';
}

/** Transferable copies of the model's files: a fresh set per worker (transfers detach them). */
export type SourceFactory = () => Promise<TextModelSource>;

function transferablesOf(source: TextModelSource): ArrayBuffer[] {
  return source.format === 'llama2c' ? [source.checkpoint, source.tokenizer] : Object.values(source.files);
}

export class TextModel {
  private plan: LlamaPlan | undefined;
  /** The last generation speculated (see planMayChange). */
  private speculated = false;

  private constructor(
    private readonly client: WorkerClient<TextService>,
    public info: TextModelInfo,
    readonly source: 'cache' | 'network',
  ) {
    this.plan = info.plan;
  }

  /** @internal use Whittle.text() */
  static async start(spawn: SpawnWorker, runtime: RuntimeConfig, files: SourceFactory, options: TextLoadOptions, label: string, source: 'cache' | 'network'): Promise<TextModel> {
    let self: TextModel | null = null;
    // Replayed on a fresh worker after a death, with the plan in force at that time.
    const { client, info } = await startLoaded<TextService, TextModelInfo>({
      spawn,
      label: `text:${label}`,
      load: async (remote) => {
        await remote.init(runtime);
        const src = await files();
        return remote.load(Comlink.transfer(src, transferablesOf(src)), { ...options, plan: self?.plan ?? options.plan });
      },
      onReload: (reloaded) => {
        if (self) self.info = reloaded;
      },
    });
    self = new TextModel(client, info, source);
    return self;
  }

  /** Streams `{ type: 'token' }` events, then one `{ type: 'done', stats }`. */
  async *generate(prompt: Prompt, options: GenerateOptions = {}): AsyncGenerator<TextEvent, void, undefined> {
    const { signal, ...rest } = options;
    throwIfAborted(signal);
    const refresh = this.planMayChange(rest);
    const id = await this.client.call((r) => r.start(prompt, rest));
    let finished = false;
    const cancel = () => void this.client.call((r) => r.cancel(id)).catch(() => undefined);
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      while (!finished) {
        const { events, done } = await this.client.call((r) => r.next(id));
        finished = done;
        for (const e of events) {
          // Events already computed when the signal fired are dropped, like fetch's body after abort.
          throwIfAborted(signal);
          yield e;
        }
      }
    } finally {
      signal?.removeEventListener('abort', cancel);
      if (!finished) cancel(); // the consumer stopped early (break/return) or an error: stop the worker too
      if (refresh) await this.refreshInfo();
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
      try {
        return await this.client.call((r) => r.complete(prompt, rest));
      } finally {
        if (refresh) await this.refreshInfo();
      }
    }
    for await (const ev of this.generate(prompt, options)) if (ev.type === 'done') return ev;
    throw new WhittleError('INTERNAL', 'generation ended without a done event');
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
   * The worker may have recompiled its plan (even if the generation then failed or was cut
   * short): re-read info so `info` and a respawn's replay stay in step.
   */
  private async refreshInfo(): Promise<void> {
    try {
      this.info = await this.client.call((r) => r.describe());
      this.plan = this.info.plan;
    } catch {
      // The worker died or was disposed: the next call respawns it with the last known plan.
    }
  }

  /** Recompiles the plan from the weights already in the worker. */
  async setPlan(plan: LlamaPlan): Promise<TextModelInfo> {
    this.info = await this.client.call((r) => r.setPlan(plan));
    this.plan = this.info.plan;
    return this.info;
  }

  /**
   * On-device depth pruning (no download, no re-read): the worker scores every block on the
   * calibration text, drops the `remove` least important and recompiles.
   *
   * @example
   * const { removed, scores } = await lm.prune({ remove: 1, criterion: 'influence' });
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    const result = await this.client.call((r) => r.prune(options));
    this.info = result.info;
    this.plan = result.info.plan;
    return result;
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
    return this.client.call((r) => r.calibrateExits(options));
  }

  /**
   * Teacher-forced perplexity of `text` (BOS prepended) or token ids under the current plan: what
   * a pruned plan costs in quality, measured on your own held-out text.
   */
  perplexity(text: string | number[]): Promise<{ perplexity: number; predictions: number }> {
    return this.client.call((r) => r.perplexity(text));
  }

  /** Logits [vocab] after a fresh prefill of `tokens` (through the exit when `exit`). */
  logits(tokens: number[], exit = false): Promise<Float32Array> {
    return this.client.call((r) => r.logits(tokens, exit));
  }

  encode(text: string): Promise<number[]> {
    return this.client.call((r) => r.encode(text));
  }

  worker(): Promise<Worker> {
    return this.client.worker();
  }

  dispose(): void {
    this.client.dispose();
  }
}
