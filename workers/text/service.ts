/**
 * What the text worker exposes: the TextEngine behind an RPC-friendly surface.
 *
 * Async generators and AbortSignals cannot cross a worker boundary, so a generation is a
 * *stream id*: `start()` begins generating eagerly into a queue (the next token is computed
 * while the previous one is in flight to the page), `next()` drains whatever is queued (or
 * waits for the next event), `cancel()` aborts it within one step. Plain class: testable in Node.
 */
import { WhittleError, asWhittleError, toWire, fromWire, type WireError } from '../../sdk/errors.ts';
import type { LlamaPlan } from '../../models/llama/types.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import { loadOrt, runtimeInfo, type OrtModule, type RuntimeConfig, type RuntimeInfo } from '../ort/runtime.ts';
import { TextEngine, type GenerateOptions, type TextEvent } from './engine.ts';
import { textModelFromHf, textModelFromLlama2c } from './model.ts';

/** Model files as the worker receives them (transferred ArrayBuffers). */
export type TextModelSource =
  | { format: 'llama2c'; checkpoint: ArrayBuffer; tokenizer: ArrayBuffer; name?: string }
  | { format: 'hf'; files: Record<string, ArrayBuffer> };

export interface TextModelInfo {
  nLayers: number;
  dim: number;
  vocabSize: number;
  maxSeqLen: number;
  plan: LlamaPlan;
  attention: AttentionKind;
  nodeCounts: number[];
  runtime: RuntimeInfo;
}

export type StreamOptions = Omit<GenerateOptions, 'signal'>;

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
}

export class TextService {
  private ort: OrtModule | null = null;
  private runtime: RuntimeConfig | null = null;
  private engine: TextEngine | null = null;
  private streams = new Map<number, Stream>();
  private nextId = 1;

  async init(runtime: RuntimeConfig): Promise<RuntimeInfo> {
    this.ort = await loadOrt(runtime);
    this.runtime = runtime;
    return runtimeInfo(runtime);
  }

  async load(source: TextModelSource, options: { plan?: LlamaPlan; attention?: AttentionKind | 'auto' } = {}): Promise<TextModelInfo> {
    if (!this.ort || !this.runtime) throw new WhittleError('INVALID_ARGUMENT', 'init() must run before load()');
    const model = source.format === 'llama2c' ? textModelFromLlama2c(source.checkpoint, source.tokenizer, source.name) : textModelFromHf(source.files);
    await this.engine?.dispose();
    this.engine = await TextEngine.create(this.ort, this.runtime.backend, model, options);
    return this.info();
  }

  async setPlan(plan: LlamaPlan): Promise<TextModelInfo> {
    await this.requireEngine().setPlan(plan);
    return this.info();
  }

  /** Logits [vocab] after a fresh prefill of `tokens` (scoring, tests). */
  logits(tokens: number[], exit = false): Promise<Float32Array> {
    return this.requireEngine().logits(tokens, { exit });
  }

  encode(text: string): number[] {
    return this.requireEngine().tokenizer.encode(text);
  }

  /**
   * Runs a whole generation inside the worker and returns its `done` event: no per-token
   * round trips, for callers that want the result, not the stream.
   */
  async complete(prompt: string | number[], options: StreamOptions = {}): Promise<Extract<TextEvent, { type: 'done' }>> {
    for await (const ev of this.requireEngine().generate(prompt, options)) if (ev.type === 'done') return ev;
    throw new WhittleError('INTERNAL', 'generation ended without a done event');
  }

  /** Starts a generation; returns its stream id. */
  start(prompt: string | number[], options: StreamOptions = {}): number {
    const engine = this.requireEngine();
    const id = this.nextId++;
    const stream: Stream = { queue: [], space: null, error: null, finished: false, wake: null, controller: new AbortController() };
    this.streams.set(id, stream);
    const iterator = engine.generate(prompt, { ...options, signal: stream.controller.signal });
    const pump = async () => {
      try {
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
        stream.finished = true;
        stream.wake?.();
      }
    };
    void pump();
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
    if (stream.finished && stream.queue.length === 0) {
      this.streams.delete(id);
      if (stream.error && events.length === 0) throw fromWire(stream.error);
      if (stream.error) {
        // Deliver the events first; the error surfaces on the following call.
        this.streams.set(id, { ...stream, queue: [] });
        return { events, done: false };
      }
      return { events, done: true };
    }
    return { events, done: false };
  }

  /** Aborts stream `id` within one step; its next `next()` rejects with ABORTED. */
  cancel(id: number): void {
    const stream = this.streams.get(id);
    stream?.controller.abort();
    stream?.space?.(); // a paused pump must wake up to see the abort
  }

  async dispose(): Promise<void> {
    for (const id of this.streams.keys()) this.cancel(id);
    await this.engine?.dispose();
    this.engine = null;
  }

  private info(): TextModelInfo {
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
      runtime: runtimeInfo(this.runtime!, this.ort!),
    };
  }

  private requireEngine(): TextEngine {
    if (!this.engine) throw new WhittleError('INVALID_ARGUMENT', 'no text model loaded');
    return this.engine;
  }
}
