/**
 * What the codec worker exposes: the Lyra engine plus packetization, batched so that a whole
 * clip (or a burst of live frames) is one round trip. Plain class: testable in Node.
 */
import { WhittleError } from '../../core/errors.ts';
import type { LyraModelBytes } from '../../models/import/tflite/lyra.ts';
import { loadOrt, runtimeInfo, type OrtModule, type RuntimeConfig, type RuntimeInfo } from '../ort/runtime.ts';
import { FRAME_SAMPLES, MAX_QUANTIZERS, checkQuantizers } from '../../models/codec/bitrates.ts';
import { LyraCodecEngine, type CodecEngineOptions } from './engine.ts';
import { packPacket, unpackPacket } from './packet.ts';
import { resample } from './resample.ts';
import { parseWav } from '../../core/wav.ts';

/**
 * What a codec worker runs on, and the size of its graphs.
 *
 * @example
 * const codec = await w.codec();
 * console.log(codec.info.runtime.backend, codec.info.nodeCounts);
 */
export interface CodecInfo {
  runtime: RuntimeInfo;
  nodeCounts: LyraCodecEngine['nodeCounts'];
}

/**
 * Packets a streaming encoder produced for the frames it was given.
 *
 * @example
 * const { packets, offsets } = await enc.encode(frame320);
 * for (let i = 0; i + 1 < offsets.length; i++) send(packets.subarray(offsets[i], offsets[i + 1]));
 */
export interface EncodedFrames {
  /** Concatenated Whittle packets (header + Lyra payload each). */
  packets: Uint8Array;
  /** Byte offset of each packet in `packets`, plus the total length at the end. */
  offsets: Int32Array;
  /** Time spent in the engine, for live latency displays. */
  engineMs: number;
}

export class CodecService {
  private ort: OrtModule | null = null;
  private runtime: RuntimeConfig | null = null;
  private engine: LyraCodecEngine | null = null;
  /** Decoder features of the last good frame, for concealment. */
  private lastFeatures: Float32Array | null = null;
  /** Output gain: faded during concealment, ramped back after it. */
  private gain = 1;
  private consecutiveLost = 0;

  async init(runtime: RuntimeConfig): Promise<RuntimeInfo> {
    this.ort = await loadOrt(runtime);
    this.runtime = runtime;
    return runtimeInfo(runtime);
  }

  async load(models: LyraModelBytes, options: CodecEngineOptions = {}): Promise<CodecInfo> {
    if (!this.ort || !this.runtime) throw new WhittleError('INVALID_ARGUMENT', 'init() must run before load()');
    await this.engine?.dispose();
    this.engine = await LyraCodecEngine.create(this.ort, this.runtime.backend, models, options);
    return { runtime: runtimeInfo(this.runtime, this.ort), nodeCounts: this.engine.nodeCounts };
  }

  /**
   * Encodes consecutive 320-sample frames (16 kHz, [-1, 1]) continuing the encoder's stream.
   * `quantizers` is one count for all frames or one per frame (per-frame bitrate switching).
   */
  async encodeFrames(pcm: Float32Array, quantizers: number | Int32Array, firstFrameIndex: number): Promise<EncodedFrames> {
    const engine = this.requireEngine();
    if (pcm.length % FRAME_SAMPLES !== 0) {
      throw new WhittleError('INVALID_ARGUMENT', `encodeFrames takes whole 320-sample frames, got ${pcm.length} samples`, { samples: pcm.length });
    }
    for (let i = 0; i < pcm.length; i++) {
      if (!Number.isFinite(pcm[i]!)) throw new WhittleError('INVALID_ARGUMENT', `sample ${i} is ${pcm[i]}; audio must be finite`, { index: i });
    }
    const frames = pcm.length / FRAME_SAMPLES;
    if (typeof quantizers !== 'number' && quantizers.length !== frames) {
      throw new WhittleError('INVALID_ARGUMENT', `${quantizers.length} quantizer counts for ${frames} frames`);
    }
    const t0 = performance.now();
    const parts: Uint8Array[] = [];
    const offsets = new Int32Array(frames + 1);
    for (let f = 0; f < frames; f++) {
      const n = typeof quantizers === 'number' ? quantizers : quantizers[f]!;
      checkQuantizers(n);
      const codes = await engine.encode(pcm.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES), n);
      const packet = packPacket(codes, n, (firstFrameIndex + f) & 0xffff);
      parts.push(packet);
      offsets[f + 1] = offsets[f]! + packet.length;
    }
    const packets = new Uint8Array(offsets[frames]!);
    parts.forEach((p, i) => packets.set(p, offsets[i]!));
    return { packets, offsets, engineMs: performance.now() - t0 };
  }

  /**
   * A whole clip at any sample rate: resampled to 16 kHz, zero-padded to whole frames, encoded
   * from a fresh encoder state.
   */
  async encodeClip(pcm: Float32Array, sampleRate: number, quantizers: number): Promise<EncodedFrames & { frames: number }> {
    const at16k = sampleRate === 16000 ? pcm : resample(pcm, sampleRate, 16000);
    const frames = Math.ceil(at16k.length / FRAME_SAMPLES);
    const padded = new Float32Array(frames * FRAME_SAMPLES);
    padded.set(at16k);
    this.requireEngine().resetEncoder();
    return { ...(await this.encodeFrames(padded, quantizers, 0)), frames };
  }

  /** A mono WAV file (any common rate) to packets; typed errors for invalid, stereo or non-finite audio. */
  async encodeWav(wav: ArrayBuffer, quantizers: number): Promise<EncodedFrames & { frames: number; sampleRate: number }> {
    const audio = parseWav(wav, { mono: true });
    return { ...(await this.encodeClip(audio.samples, audio.sampleRate, quantizers)), sampleRate: audio.sampleRate };
  }

  /** Decodes concatenated packets, continuing the decoder's stream; 320 samples per packet. */
  async decodePackets(packets: Uint8Array): Promise<{ pcm: Float32Array; frames: number; quantizers: Int32Array; engineMs: number }> {
    const engine = this.requireEngine();
    const t0 = performance.now();
    const out: Float32Array[] = [];
    const quantizers: number[] = [];
    for (let p = 0; p < packets.length; ) {
      const packet = unpackPacket(packets.subarray(p));
      const features = await engine.dequantize(packet.codes);
      this.lastFeatures = features;
      this.consecutiveLost = 0;
      out.push(this.rampTo(1, await engine.decodeFeatures(features)));
      quantizers.push(packet.numQuantizers);
      p += packet.size;
    }
    const pcm = new Float32Array(out.length * FRAME_SAMPLES);
    out.forEach((frame, i) => pcm.set(frame, i * FRAME_SAMPLES));
    return { pcm, frames: out.length, quantizers: Int32Array.from(quantizers), engineMs: performance.now() - t0 };
  }

  /**
   * A run of playout slots in one call (a live receiver catching up after a pause pays one
   * round trip, not one per frame): slot i is decoded from the next packet of `packets` when
   * `present[i]` is 1 and concealed when it is 0, in order, exactly as the same sequence of
   * decodePackets and conceal calls would. INVALID_ARGUMENT when the packets do not match the
   * slots that say they are present.
   */
  async decodeSlots(packets: Uint8Array, present: Uint8Array): Promise<{ pcm: Float32Array; quantizers: Int32Array; engineMs: number }> {
    this.requireEngine();
    // Checked before anything runs, so a bad call leaves the decoder's state as it was.
    const sizes: number[] = [];
    for (let p = 0; p < packets.length; p += sizes.at(-1)!) sizes.push(unpackPacket(packets.subarray(p)).size);
    const wanted = present.reduce((n, x) => n + (x ? 1 : 0), 0);
    if (sizes.length !== wanted) {
      throw new WhittleError('INVALID_ARGUMENT', `${sizes.length} packets for ${wanted} slots marked present`, { packets: sizes.length, present: wanted });
    }
    const t0 = performance.now();
    const pcm = new Float32Array(present.length * FRAME_SAMPLES);
    const quantizers = new Int32Array(present.length);
    let p = 0;
    for (let i = 0; i < present.length; i++) {
      if (present[i]) {
        const size = sizes.shift()!;
        const out = await this.decodePackets(packets.subarray(p, p + size));
        pcm.set(out.pcm, i * FRAME_SAMPLES);
        quantizers[i] = out.quantizers[0]!;
        p += size;
      } else {
        pcm.set(await this.conceal(), i * FRAME_SAMPLES);
      }
    }
    return { pcm, quantizers, engineMs: performance.now() - t0 };
  }

  /**
   * Packet-loss concealment: one frame in place of a lost packet. The decoder runs on the last
   * good frame's features (so its conv state keeps evolving and the next real frame joins
   * smoothly) and the output fades out over consecutive losses; the gain ramps back up within
   * the first good frame, sample by sample, so neither edge clicks.
   */
  async conceal(): Promise<Float32Array> {
    const engine = this.requireEngine();
    this.consecutiveLost++;
    if (!this.lastFeatures) return new Float32Array(FRAME_SAMPLES); // nothing heard yet: silence
    const target = Math.pow(0.7, this.consecutiveLost);
    return this.rampTo(target < 0.05 ? 0 : target, await engine.decodeFeatures(this.lastFeatures));
  }

  /** Applies a gain that moves linearly from the current one to `target` across the frame. */
  private rampTo(target: number, frame: Float32Array): Float32Array {
    const from = this.gain;
    if (from === 1 && target === 1) return frame;
    const out = new Float32Array(frame.length);
    for (let i = 0; i < frame.length; i++) out[i] = frame[i]! * (from + ((target - from) * (i + 1)) / frame.length);
    this.gain = target;
    return out;
  }

  /**
   * Runs encoder, quantizer and decoder on `frames` frames of silence, then resets both streaming
   * states. An onnxruntime session's first runs are several times slower than the later ones
   * (allocations, kernel set-up): a live stream that starts cold pays that as playback underruns
   * in its first frames. Returns each warm-up frame's time (encode + decode), ms.
   */
  async warmUp(frames: number): Promise<Float64Array> {
    const engine = this.requireEngine();
    if (!Number.isInteger(frames) || frames < 1 || frames > 100) {
      throw new WhittleError('INVALID_ARGUMENT', `warmUp takes 1..100 frames, got ${frames}`, { frames });
    }
    const silence = new Float32Array(FRAME_SAMPLES);
    const times = new Float64Array(frames);
    for (let f = 0; f < frames; f++) {
      const t0 = performance.now();
      await engine.decode(await engine.encode(silence, MAX_QUANTIZERS));
      times[f] = performance.now() - t0;
    }
    this.resetEncoder();
    this.resetDecoder();
    return times;
  }

  resetEncoder(): void {
    this.requireEngine().resetEncoder();
  }

  resetDecoder(): void {
    this.requireEngine().resetDecoder();
    this.lastFeatures = null;
    this.gain = 1;
    this.consecutiveLost = 0;
  }

  async dispose(): Promise<void> {
    await this.engine?.dispose();
    this.engine = null;
  }

  private requireEngine(): LyraCodecEngine {
    if (!this.engine) throw new WhittleError('INVALID_ARGUMENT', 'no codec model loaded');
    return this.engine;
  }
}
