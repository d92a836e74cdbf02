/**
 * Runs the probe segments (models/llama/probe-plan.ts) for block scoring and exit calibration:
 * one graph per block and one head-only graph, compiled from the engine's prepared weights.
 *
 * Every run is one prefill from an empty KV cache (positions 0 .. S-1 of a calibration window):
 * the probe never decodes, so it keeps no cache and feeds empty `past_*`. The host holds the
 * hidden states between blocks, which is what lets a caller observe every block's input and
 * output, chain blocks in any subset or order, and apply the head to any of them.
 *
 * Memory: a segment's session is compiled when a caller asks for it and released when that
 * call returns (`block(l, fn)`, `head(fn)`), so onnxruntime holds at most one block's (or the
 * head's) weights on top of the compiled plan's, never a second copy of the whole model, and
 * nothing once scoring is done. Callers therefore order their work layer-major (every input
 * through block l, then block l + 1), which is also what makes perplexity-with-block-l-removed
 * cheap: the streams share their prefix.
 *
 * Abortable: a checkpoint (checkpoint.ts) runs before every compile and every session.run.
 *
 * @example
 * const probe = new ProbeRunner({ ort, backend, weights: prepared, attention }, signal);
 * const h0 = probe.embed(tokens);                                   // [S, dim]
 * const h1 = await probe.block(0, (run) => run(h0));                // after block 0
 * await probe.head(async (run) => { const logits = await run(h1, 0, S); }); // [S, vocab]
 */
import { WhittleError } from '../../core/errors.ts';
import { buildSegment, kvCacheShape, type AttentionKind } from '../../models/llama/graph.ts';
import type { Segment } from '../../models/llama/plan.ts';
import { layerWidth, type PreparedWeights } from '../../models/llama/prepare.ts';
import { probeBlockSegment, probeHeadSegment } from '../../models/llama/probe-plan.ts';
import { createSession, type Backend, type OrtModule } from '../ort/runtime.ts';
import { Checkpoint } from './checkpoint.ts';
import { StepInputs } from './runner.ts';
import type * as Ort from 'onnxruntime-web';

/** What a probe compiles from: the engine's runtime, prepared weights and attention kind (the probes use 'onnx' whatever it says; see ProbeRunner). */
export interface ProbeSource {
  ort: OrtModule;
  backend: Backend;
  weights: PreparedWeights;
  attention: AttentionKind;
}

/** Runs block l over a hidden state [S * dim] at positions 0 .. S-1; resolves with its output [S * dim]. */
export type BlockRun = (hidden: Float32Array) => Promise<Float32Array>;

/** Final norm + head over positions from .. from+count-1 of a hidden state [S * dim]; resolves with logits [count * vocab]. */
export type HeadRun = (hidden: Float32Array, from: number, count: number) => Promise<Float32Array>;

/**
 * Logits one head run may return, in floats: positions per run are capped so a run returns at
 * most this many (16 MB); a 128k vocabulary then gets 32 positions per run instead of a window's
 * worth of [S, vocab] at once.
 */
const HEAD_RUN_FLOATS = 1 << 22;

export class ProbeRunner {
  private readonly source: ProbeSource;
  private readonly checkpoint: Checkpoint;
  private readonly inputs: StepInputs;

  constructor(source: ProbeSource, signal?: AbortSignal) {
    // Probes compile their own graphs, always with the 'onnx' attention (plain ops), whatever the
    // engine generates with. In Chromium's WebGPU (SwiftShader) a probe prefill from an empty
    // past through GroupQueryAttention measures other values than WASM: Wanda's statistics
    // (activation-stats.ts, which forced this first) and block scores (stories260K, 33 calibration
    // tokens: the perplexity without block 1 or 3, 2.90 and 2.95 on WASM, ranked the other way, so
    // depth pruning and compress({ target }) removed other blocks; e2e/width.spec.ts caught it).
    this.source = { ...source, attention: 'onnx' };
    const c = source.weights.config;
    this.checkpoint = new Checkpoint(signal);
    this.inputs = new StepInputs(source.ort, this.source.attention, c.nHeads / c.nKvHeads);
  }

  /** Positions one head run covers at most (callers chunk with it: `run(h, from, count)`). */
  get headPositions(): number {
    return Math.max(1, Math.floor(HEAD_RUN_FLOATS / this.source.weights.config.vocabSize));
  }

  /**
   * The residual stream entering the first block: embedding rows of `tokens` [S * dim], gathered
   * on the host (the same values a Gather gives; see probe-plan.ts for why not in a graph).
   */
  embed(tokens: readonly number[]): Float32Array {
    const { config: c, embedding } = this.source.weights;
    if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no tokens to probe');
    if (tokens.length > c.maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `window of ${tokens.length} tokens exceeds the context (${c.maxSeqLen})`);
    const out = new Float32Array(tokens.length * c.dim); // [S, dim]
    tokens.forEach((t, s) => {
      if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new WhittleError('INVALID_ARGUMENT', `calibration token ${t} is outside the vocabulary (${c.vocabSize})`, { token: t });
      out.set(embedding.subarray(t * c.dim, (t + 1) * c.dim), s * c.dim);
    });
    return out;
  }

  /** Compiles block `layer`, lets `fn` run it over any hidden states, releases it. */
  async block<T>(layer: number, fn: (run: BlockRun) => Promise<T>): Promise<T> {
    const c = this.source.weights.config;
    const segment = probeBlockSegment(layer, c.nLayers);
    const K = layerWidth(c, this.source.weights.layers[layer]!).nKvHeads;
    const hs = this.source.weights.headSize;
    return this.withSession(segment, {}, (session) =>
      fn(async (hidden) => {
        const S = this.positions(hidden);
        const { ort, attention } = this.source;
        const feeds = this.inputs.feeds(0, S);
        feeds.hidden_in = new ort.Tensor('float32', hidden, [1, S, c.dim]);
        // An empty cache: each probe run is a prefill from position 0.
        feeds[`past_key.${layer}`] = new ort.Tensor('float32', new Float32Array(0), kvCacheShape(attention, 'key', K, hs, 0));
        feeds[`past_value.${layer}`] = new ort.Tensor('float32', new Float32Array(0), kvCacheShape(attention, 'value', K, hs, 0));
        return this.run(session, feeds, 'hidden_out');
      }),
    );
  }

  /** Compiles the head segment, lets `fn` run it over any hidden states, releases it. */
  async head<T>(fn: (run: HeadRun) => Promise<T>): Promise<T> {
    const c = this.source.weights.config;
    // The head graph has no block, so the RoPE tables graph.ts declares for every segment are
    // unused and onnxruntime warns that it drops them on every compile: errors only for this one.
    return this.withSession(probeHeadSegment(), { logSeverityLevel: 3 }, (session) =>
      fn(async (hidden, from, count) => {
        const S = this.positions(hidden);
        if (!Number.isInteger(from) || !Number.isInteger(count) || from < 0 || count < 1 || from + count > S || count > this.headPositions) {
          throw new WhittleError('INVALID_ARGUMENT', `head positions ${from}..${from + count - 1} are outside 0..${S - 1} or over ${this.headPositions} per run`);
        }
        // The head has no attention: position and mask are declared by the graph, read by no node.
        const feeds = this.inputs.feeds(0, count);
        feeds.hidden_in = new this.source.ort.Tensor('float32', hidden.subarray(from * c.dim, (from + count) * c.dim), [1, count, c.dim]);
        return this.run(session, feeds, 'logits');
      }),
    );
  }

  /** Positions in a hidden state [S * dim]. */
  private positions(hidden: Float32Array): number {
    const { dim, maxSeqLen } = this.source.weights.config;
    const S = hidden.length / dim;
    if (!Number.isInteger(S) || S < 1 || S > maxSeqLen) throw new WhittleError('INVALID_ARGUMENT', `a hidden state of ${hidden.length} values is not 1..${maxSeqLen} positions of ${dim}`);
    return S;
  }

  private async withSession<T>(segment: Segment, options: Ort.InferenceSession.SessionOptions, fn: (session: Ort.InferenceSession) => Promise<T>): Promise<T> {
    await this.checkpoint.pass();
    const { ort, backend, weights, attention } = this.source;
    const session = await createSession(ort, buildSegment(weights, segment, attention).built, backend, options);
    try {
      return await fn(session);
    } finally {
      await session.release();
    }
  }

  /** One session.run fetching only `output` (never the present_* caches), after a checkpoint. */
  private async run(session: Ort.InferenceSession, feeds: Record<string, Ort.Tensor>, output: string): Promise<Float32Array> {
    await this.checkpoint.pass();
    const inputs: Record<string, Ort.Tensor> = {};
    for (const name of session.inputNames) inputs[name] = feeds[name]!;
    const out = await session.run(inputs, [output]);
    const tensor = out[output]!;
    // On WASM the output already is a fresh array of its own (no copy); on WebGPU getData downloads it.
    const data = (await tensor.getData()) as Float32Array;
    tensor.dispose();
    return data;
  }
}
