/**
 * Lyra v2 (SoundStream) in a worker: whole-clip encode/decode and streaming encoder/decoder
 * objects whose bitrate can change on every 20 ms frame.
 *
 * One Codec holds one encoder state and one decoder state: use one streaming encoder and one
 * streaming decoder per Codec (create another Codec for more concurrent streams).
 *
 * @example
 * const codec = await w.codec('lyra-v2');
 * const packets = await codec.encode(pcm, { kbps: 6, sampleRate: 48000 });
 * const speech = await codec.decode(packets); // 16 kHz
 * const enc = codec.encoder({ kbps: 6 });
 * const packet = await enc.encode(frame320); enc.setBitrate(3.2); // next frame at 3.2 kbps
 */
import * as Comlink from 'comlink';
import { WhittleError } from '../core/errors.ts';
import { LYRA_V2 } from '../models/codec/lyra-v2.ts';
import { BITRATES, BITS_PER_QUANTIZER, FRAMES_PER_SECOND, quantizersForKbps } from '../models/codec/bitrates.ts';
import type { LyraModelBytes } from '../models/import/tflite/lyra.ts';
import type { CodecInfo, CodecService, EncodedFrames } from '../workers/codec/service.ts';
import type { RequantMode } from '../models/import/tflite/requant.ts';
import type { RuntimeConfig } from '../workers/ort/runtime.ts';
import { startLoaded, type SpawnWorker, type WorkerClient } from './client/worker-client.ts';

export type { CodecInfo, EncodedFrames };

/**
 * Every rate the quantizer supports: n quantizers = n * 0.2 kbps, n = 1..46.
 *
 * @example
 * select.append(...CODEC_BITRATES_KBPS.map((k) => new Option(`${k.toFixed(1)} kbps`, String(k))));
 */
export const CODEC_BITRATES_KBPS: readonly number[] = BITRATES.map((b) => b.kbps);

/**
 * Quantizer count for `kbps` (a multiple of 0.2 in 0.2..9.2); INVALID_ARGUMENT otherwise.
 *
 * @example
 * quantizersFor(3.2); // 16
 * quantizersFor(3.3); // throws WhittleError('INVALID_ARGUMENT')
 */
export const quantizersFor = quantizersForKbps;

/**
 * A streaming encoder (from `codec.encoder()`): 20 ms frames in, packets out, the bitrate
 * switchable on any frame.
 *
 * @example
 * const enc: StreamEncoder = codec.encoder({ kbps: 6 });
 * const { packets } = await enc.encode(frame320); // 320 samples at 16 kHz
 * enc.setBitrate(3.2);                            // the next packet's header says 16 quantizers
 */
export interface StreamEncoder {
  /** Encodes whole 320-sample frames at 16 kHz; returns concatenated packets. */
  encode(frames: Float32Array): Promise<EncodedFrames>;
  /** Takes effect on the next frame; no reset, no state change. */
  setBitrate(kbps: number): void;
  /**
   * Skips `frames` frames (default 1) without encoding them: the frame index moves on, so the
   * receiver sees a gap (and conceals it). For a live sender that has fallen behind real time.
   */
  skip(frames?: number): void;
  readonly kbps: number;
  /** Frames encoded so far (the next packet's frame index). */
  readonly frameIndex: number;
  reset(): Promise<void>;
}

/**
 * A streaming decoder (from `codec.decoder()`): packets in, 16 kHz audio out; `conceal()` fills
 * in for a lost packet.
 *
 * @example
 * const dec: StreamDecoder = codec.decoder();
 * const pcm = packet ? (await dec.decode(packet)).pcm : await dec.conceal();
 */
export interface StreamDecoder {
  /** Decodes concatenated packets (any mix of bitrates: each header says its own). */
  decode(packets: Uint8Array): Promise<{ pcm: Float32Array; frames: number; quantizers: Int32Array; engineMs: number }>;
  /** 320 samples in place of a lost packet (fades out over consecutive losses, no clicks). */
  conceal(): Promise<Float32Array>;
  /**
   * A run of slots in one round trip: each packet decoded, each null concealed, in order (the
   * same audio as one decode or conceal call per slot). `quantizers` is 0 for a concealed slot.
   */
  decodeSlots(slots: readonly (Uint8Array | null)[]): Promise<{ pcm: Float32Array; quantizers: Int32Array; engineMs: number }>;
  reset(): Promise<void>;
}

/**
 * Lyra v2 in its own worker (from `Whittle.codec()`): whole clips or streams, 16 kHz mono.
 *
 * @example
 * const codec = await w.codec('lyra-v2');
 * const packets = await codec.encodeWav(await file.arrayBuffer(), { kbps: 3.2 });
 * const speech = await codec.decode(packets); // Float32Array at 16 kHz
 * codec.dispose();
 */
export class Codec {
  private constructor(
    private readonly client: WorkerClient<CodecService>,
    readonly info: CodecInfo,
  ) {}

  /** @internal use Whittle.codec() */
  static async start(
    spawn: SpawnWorker,
    runtime: RuntimeConfig,
    models: () => Promise<LyraModelBytes>,
    label: string,
    engine: { requant?: RequantMode } = {},
  ): Promise<Codec> {
    if (engine.requant === 'exact-f64' && runtime.backend === 'webgpu') {
      // WebGPU has no float64: onnxruntime would run those nodes on the CPU, a copy per node.
      throw new WhittleError('INVALID_ARGUMENT', "requant 'exact-f64' needs the wasm backend; use 'exact-f32' on webgpu", { requant: engine.requant });
    }
    const { client, info } = await startLoaded<CodecService, CodecInfo>({
      spawn,
      label: `codec:${label}`,
      load: async (remote) => {
        await remote.init(runtime);
        const m = await models();
        const buffers = [m.encoder, m.quantizer, m.decoder].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
        // Without `requant` the engine picks: 'float' on wasm, 'exact-f32' on webgpu (no float64 there).
        return remote.load(Comlink.transfer(m, buffers), engine.requant ? { requant: engine.requant } : {});
      },
    });
    return new Codec(client, info);
  }

  /** A whole clip (any sample rate, mono, [-1, 1]) to packets, from a fresh encoder state. */
  async encode(pcm: Float32Array, options: { kbps?: number; sampleRate?: number } = {}): Promise<Uint8Array> {
    const n = quantizersFor(options.kbps ?? 6);
    // Copied inside the call: a call retried on a fresh worker (after a device loss) transfers a copy of its own.
    const out = await this.client.call((r) => {
      const copy = Float32Array.from(pcm);
      return r.encodeClip(Comlink.transfer(copy, [copy.buffer]), options.sampleRate ?? 16000, n);
    });
    return out.packets;
  }

  /** A mono WAV file (16-bit PCM or float, any common rate) to packets. Stereo/invalid files are INVALID_ARGUMENT. */
  async encodeWav(wav: ArrayBuffer, options: { kbps?: number } = {}): Promise<Uint8Array> {
    const n = quantizersFor(options.kbps ?? 6);
    return (
      await this.client.call((r) => {
        const copy = wav.slice(0);
        return r.encodeWav(Comlink.transfer(copy, [copy]), n);
      })
    ).packets;
  }

  /** Packets to 16 kHz audio, from a fresh decoder state. */
  async decode(packets: Uint8Array): Promise<Float32Array> {
    await this.client.call((r) => r.resetDecoder());
    return (
      await this.client.call((r) => {
        const copy = packets.slice();
        return r.decodePackets(Comlink.transfer(copy, [copy.buffer]));
      })
    ).pcm;
  }

  /**
   * Runs the codec on `frames` frames of silence (default 8) and resets its streaming states, so
   * that a live stream's first frames do not pay for onnxruntime's slow first runs. Returns each
   * warm-up frame's worker time (encode + decode), ms: the first is the cold one.
   *
   * @example
   * const times = await codec.warmUp(); // e.g. [9.8, 2.1, 1.9, ...] ms
   */
  async warmUp(frames = 8): Promise<number[]> {
    return Array.from(await this.client.call((r) => r.warmUp(frames)));
  }

  /** A streaming encoder at `kbps` (default 6); one per Codec (it owns the encoder state). */
  encoder(options: { kbps?: number } = {}): StreamEncoder {
    let n = quantizersFor(options.kbps ?? 6);
    let frameIndex = 0;
    let started = false;
    const call = this.client;
    return {
      get kbps() {
        return (n * BITS_PER_QUANTIZER * FRAMES_PER_SECOND) / 1000;
      },
      get frameIndex() {
        return frameIndex;
      },
      setBitrate(kbps: number) {
        n = quantizersFor(kbps);
      },
      skip(frames = 1) {
        if (!Number.isInteger(frames) || frames < 0) throw new WhittleError('INVALID_ARGUMENT', `skip takes a whole number of frames, got ${frames}`, { frames });
        frameIndex += frames;
      },
      async encode(frames: Float32Array) {
        if (!started) {
          await call.call((r) => r.resetEncoder());
          started = true;
        }
        const first = frameIndex;
        frameIndex += Math.floor(frames.length / LYRA_V2.frameSamples);
        return call.call((r) => {
          const copy = Float32Array.from(frames); // per attempt (see WorkerClient.call)
          return r.encodeFrames(Comlink.transfer(copy, [copy.buffer]), n, first);
        });
      },
      async reset() {
        frameIndex = 0;
        await call.call((r) => r.resetEncoder());
      },
    };
  }

  /** A streaming decoder; one per Codec (it owns the decoder state). */
  decoder(): StreamDecoder {
    let started = false;
    const call = this.client;
    return {
      async decode(packets: Uint8Array) {
        if (!started) {
          await call.call((r) => r.resetDecoder());
          started = true;
        }
        return call.call((r) => {
          const copy = packets.slice(); // per attempt (see WorkerClient.call)
          return r.decodePackets(Comlink.transfer(copy, [copy.buffer]));
        });
      },
      async conceal() {
        if (!started) {
          await call.call((r) => r.resetDecoder());
          started = true;
        }
        return call.call((r) => r.conceal());
      },
      async decodeSlots(slots: readonly (Uint8Array | null)[]) {
        if (!started) {
          await call.call((r) => r.resetDecoder());
          started = true;
        }
        const present = Uint8Array.from(slots, (s) => (s ? 1 : 0));
        const size = slots.reduce((n, s) => n + (s?.length ?? 0), 0);
        return call.call((r) => {
          // Built per attempt (see WorkerClient.call): transferred buffers are gone afterwards.
          const packets = new Uint8Array(size);
          let at = 0;
          for (const s of slots) {
            if (!s) continue;
            packets.set(s, at);
            at += s.length;
          }
          const mask = present.slice();
          return r.decodeSlots(Comlink.transfer(packets, [packets.buffer]), Comlink.transfer(mask, [mask.buffer]));
        });
      },
      async reset() {
        await call.call((r) => r.resetDecoder());
      },
    };
  }

  /** The current worker (tests use it to kill the worker; devtools to find it). */
  worker(): Promise<Worker> {
    return this.client.worker();
  }

  /** Ends the worker; the Codec cannot be used afterwards. */
  dispose(): void {
    this.client.dispose();
  }
}
