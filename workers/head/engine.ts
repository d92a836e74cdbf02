/**
 * HeadEngine: loads a llama2.c checkpoint and runs its zero-block plan (embedding -> final
 * norm -> LM head) on onnxruntime-web. A plain class: the worker entry only wires comlink
 * to it, and Node tests construct it directly.
 */
import type * as Ort from 'onnxruntime-web';
import { WhittleError } from '../../core/errors.ts';
import { buildHeadGraph } from '../../models/head/graph.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { createSession, loadOrt, runtimeInfo, type OrtModule, type RuntimeConfig, type RuntimeInfo } from '../ort/runtime.ts';

export interface HeadModelInfo {
  dim: number;
  vocabSize: number;
  nLayers: number;
  nodeCount: number;
  runtime: RuntimeInfo;
}

export class HeadEngine {
  private ort: OrtModule | null = null;
  private runtime: RuntimeConfig | null = null;
  private session: Ort.InferenceSession | null = null;
  private vocabSize = 0;
  // The checkpoint must outlive the session: its external data are views on it.
  private checkpoint: ArrayBuffer | null = null;

  /** Loads onnxruntime-web for the backend; once per worker. */
  async init(runtime: RuntimeConfig): Promise<RuntimeInfo> {
    this.ort = await loadOrt(runtime);
    this.runtime = runtime;
    return runtimeInfo(runtime);
  }

  /** Parses a llama2.c checkpoint (legacy or v1) and builds the session. */
  async load(checkpoint: ArrayBuffer, name = 'checkpoint'): Promise<HeadModelInfo> {
    if (!this.ort || !this.runtime) throw new WhittleError('INVALID_ARGUMENT', 'HeadEngine.init() must run before load()');
    const { config, weights } = readLlama2cCheckpoint(checkpoint, name);
    const { built, nodeCount } = buildHeadGraph(config, weights);
    await this.session?.release();
    this.session = await createSession(this.ort, built, this.runtime.backend);
    this.checkpoint = checkpoint;
    this.vocabSize = config.vocabSize;
    return { dim: config.dim, vocabSize: config.vocabSize, nLayers: config.nLayers, nodeCount, runtime: runtimeInfo(this.runtime, this.ort) };
  }

  /** Logits [tokens.length, vocab] (row-major), in a fresh buffer the caller owns. */
  async logits(tokens: Int32Array): Promise<Float32Array> {
    const ort = this.ort;
    const session = this.session;
    if (!ort || !session || !this.checkpoint) throw new WhittleError('INVALID_ARGUMENT', 'no model loaded');
    if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'tokens must not be empty');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= this.vocabSize) {
        throw new WhittleError('INVALID_ARGUMENT', `token id ${t} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    const input = new ort.Tensor('int32', Int32Array.from(tokens), [tokens.length]);
    const out = await session.run({ input_ids: input });
    const logits = out.logits;
    if (!logits) throw new WhittleError('INTERNAL', 'session returned no logits');
    // getData() downloads from the GPU when the output lives there; slice() gives a buffer we own.
    const data = ((await logits.getData()) as Float32Array).slice();
    input.dispose();
    logits.dispose();
    return data;
  }

  async dispose(): Promise<void> {
    await this.session?.release();
    this.session = null;
    this.checkpoint = null;
  }
}
