/**
 * Lyra v2 streaming codec engine: encoder -> residual VQ -> decoder, each encoder/decoder an
 * ONNX graph (imported from the upstream .tflite files) whose conv history is explicit state,
 * carried here from frame to frame. The RVQ runs as pure functions over typed arrays by
 * default (bit-identical to the TFLite graph and cheaper than a 789-node session); the
 * imported quantizer graphs can be used instead with `rvq: 'graph'`.
 *
 * No DOM, no Node, no worker code: a worker wraps it as `Comlink.expose(engine)`.
 *
 * @example
 * const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
 * const codec = await LyraCodecEngine.create(ort, 'wasm', { encoder, quantizer, decoder });
 * const codes = await codec.encode(frame, 30);  // 320 samples in [-1, 1] -> Int32Array(46)
 * const pcm = await codec.decode(codes);        // -> 320 samples in [-1, 1]
 */
import { WhittleError } from '../../core/errors.ts';
import type { ConvertedGraph } from '../../models/import/tflite/convert.ts';
import { importLyra, type LyraModelBytes } from '../../models/import/tflite/lyra.ts';
import type { RequantMode } from '../../models/import/tflite/requant.ts';
import { type Backend, type OrtModule } from '../ort/runtime.ts';
import { StatefulSession } from './stateful-session.ts';
import { FRAME_SAMPLES, MAX_QUANTIZERS, checkQuantizers } from '../../models/codec/bitrates.ts';
import { rvqDecode, rvqEncode, type Codebooks } from './rvq.ts';

export interface CodecEngineOptions {
  /** Where the residual VQ runs: pure JS (default, bit-identical to TFLite) or the imported graphs. */
  rvq?: 'js' | 'graph';
  /**
   * int8 requantization (models/import/tflite/requant.ts). Default: 'float' on wasm (int8 weights
   * folded to float32 at import, no int8 emulation: encoder/decoder 184/249 nodes instead of
   * 763/549 for 'exact-f64', faster per frame (1.4x when exact-f64's encoder had 389 nodes); not bit-exact, but the decoded LSD is within
   * 0.07 dB of exact on both test clips and the first code matches on 94-99% of frames:
   * workers/codec/fast-mode.test.ts, numbers in the README) and 'exact-f32' on webgpu. 'exact-f64' (float64 nodes; the
   * encoder's float convs in TFLite's summation order) gives TFLite's features and codes bit for bit; 'exact-f32' (float32
   * ops only) has TFLite's int8 arithmetic, but its float convs round differently in the last bits, so its codes diverge
   * in bursts on some clips; 'approx' differs by one level on a few int8 outputs per thousand.
   */
  requant?: RequantMode;
  /** WebGPU only: keep the streaming state in GPU buffers between frames (default true). */
  stateOnDevice?: boolean;
}

export class LyraCodecEngine {
  /** Serializes calls: state must advance one frame at a time even if callers don't await. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly ort: OrtModule,
    private readonly encoder: StatefulSession,
    private readonly decoder: StatefulSession,
    private readonly codebooks: Codebooks,
    private readonly quantizer: { encode: StatefulSession; decode: StatefulSession } | null,
  ) {}

  /**
   * Imports the three .tflite files and creates the sessions.
   * @param ort the module from `loadOrt` (workers/ort/runtime.ts)
   * @param backend 'wasm' or 'webgpu'
   * @param models the bytes of soundstream_encoder.tflite, quantizer.tflite and lyragan.tflite
   */
  static async create(
    ort: OrtModule,
    backend: Backend,
    models: LyraModelBytes,
    options: CodecEngineOptions = {},
  ): Promise<LyraCodecEngine> {
    const rvqGraph = options.rvq === 'graph';
    const graphs = importLyra(models, {
      // 'float' was measured against the exact modes (README, fast-mode.test.ts); WebGPU keeps
      // 'exact-f32' until 'float' is checked there.
      requant: options.requant ?? (backend === 'webgpu' ? 'exact-f32' : 'float'),
      quantizerGraphs: rvqGraph,
    });
    const session = (g: ConvertedGraph) => StatefulSession.create(ort, g, backend, options.stateOnDevice ?? true);
    const encoder = await session(graphs.encoder);
    const decoder = await session(graphs.decoder);
    const quantizer =
      rvqGraph && graphs.quantizerEncode && graphs.quantizerDecode
        ? { encode: await session(graphs.quantizerEncode), decode: await session(graphs.quantizerDecode) }
        : null;
    return new LyraCodecEngine(ort, encoder, decoder, graphs.codebooks, quantizer);
  }

  private serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.queue.then(job, job);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Encoder features [64] for one frame, advancing the encoder state. */
  encodeFeatures(frame: Float32Array): Promise<Float32Array> {
    if (frame.length !== FRAME_SAMPLES) {
      return Promise.reject(
        new WhittleError('INVALID_ARGUMENT', `a frame is ${FRAME_SAMPLES} samples at 16 kHz, got ${frame.length}`, {
          samples: frame.length,
        }),
      );
    }
    return this.serial(async () => {
      // input_audio [1, 320]: samples in [-1, 1], i.e. int16 / 32768.
      const out = await this.encoder.run({ input_audio: new this.ort.Tensor('float32', Float32Array.from(frame), [1, FRAME_SAMPLES]) });
      return out.output_0!.data as Float32Array; // [1, 1, 64]
    });
  }

  /**
   * Codes for one 20 ms frame: Int32Array(46), values 0..15 for the first `numQuantizers`
   * stages and -1 beyond. The bitrate may change on every frame without a reset.
   */
  async encode(frame: Float32Array, numQuantizers: number): Promise<Int32Array> {
    checkQuantizers(numQuantizers);
    const features = await this.encodeFeatures(frame);
    if (!this.quantizer) return rvqEncode(this.codebooks, features, numQuantizers);
    const q = this.quantizer.encode;
    return this.serial(async () => {
      const out = await q.run({
        input_frames: new this.ort.Tensor('float32', features, [1, 1, 64]),
        num_quantizers: new this.ort.Tensor('int32', Int32Array.of(numQuantizers), []),
      });
      return Int32Array.from(out.output_0!.data as Int32Array);
    });
  }

  /** Features [64] for codes (-1 = stage not sent). */
  async dequantize(codes: Int32Array): Promise<Float32Array> {
    const full = new Int32Array(MAX_QUANTIZERS).fill(-1);
    full.set(codes.subarray(0, MAX_QUANTIZERS));
    if (full.some((c) => c < -1 || c > 15)) throw new WhittleError('INVALID_ARGUMENT', 'codes must be -1 or 0..15', {});
    if (!this.quantizer) return rvqDecode(this.codebooks, full);
    const q = this.quantizer.decode;
    return this.serial(
      async () =>
        (await q.run({ encoding_indices: new this.ort.Tensor('int32', full, [MAX_QUANTIZERS, 1, 1]) })).output_0!.data as Float32Array,
    );
  }

  /** 320 samples in [-1, 1] for one frame of codes, advancing the decoder state (x32767 for int16). */
  async decode(codes: Int32Array): Promise<Float32Array> {
    return this.decodeFeatures(await this.dequantize(codes));
  }

  /** 320 samples for one frame of features [64]. */
  decodeFeatures(features: Float32Array): Promise<Float32Array> {
    return this.serial(async () => {
      const out = await this.decoder.run({ input_audio: new this.ort.Tensor('float32', Float32Array.from(features), [1, 1, 64]) });
      return out.output_0!.data as Float32Array; // [1, 320]
    });
  }

  /** Back to the initial streaming state (what CALL_ONCE assigns) on both sides. */
  reset(): void {
    this.encoder.reset();
    this.decoder.reset();
  }
  resetEncoder(): void {
    this.encoder.reset();
  }
  resetDecoder(): void {
    this.decoder.reset();
  }

  /** ONNX node counts of the graphs this engine runs. */
  get nodeCounts(): { encoder: number; decoder: number; quantizerEncode: number | null; quantizerDecode: number | null } {
    return {
      encoder: this.encoder.graph.nodeCount,
      decoder: this.decoder.graph.nodeCount,
      quantizerEncode: this.quantizer?.encode.graph.nodeCount ?? null,
      quantizerDecode: this.quantizer?.decode.graph.nodeCount ?? null,
    };
  }

  async dispose(): Promise<void> {
    await Promise.all([this.encoder.dispose(), this.decoder.dispose(), this.quantizer?.encode.dispose(), this.quantizer?.decode.dispose()]);
  }
}
