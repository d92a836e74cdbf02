/**
 * A live codec session: capture worklet -> codec worker (encode) -> simulated network ->
 * jitter buffer -> codec worker (decode, or conceal a lost frame) -> playback worklet, with the
 * bitrate set by hand or by the controller from receiver feedback.
 *
 * Everything is timed on the AudioContext's clock (frame k is captured at k x 20 ms), so the
 * simulated network is deterministic for a given seed, whatever the machine's speed.
 *
 * @example
 * const ctx = new AudioContext({ sampleRate: 16000 });
 * const live = await LiveSession.create(ctx, codec, { link: { kbps: 8, delayMs: 40, jitterMs: 10, loss: 0 } });
 * source.connect(live.input); live.output.connect(ctx.destination);
 * live.setAuto(true);
 */
import captureUrl from './capture.worklet.ts?worker&url';
import playbackUrl from './playback.worklet.ts?worker&url';
import { WhittleError } from '../../core/errors.ts';
import type { Codec, StreamDecoder, StreamEncoder } from '../codec.ts';
import { BitrateController, type Decision } from './controller.ts';
import { JitterBuffer } from './jitter-buffer.ts';
import { SimulatedLink, type LinkConfig } from './network.ts';

const FRAME_MS = 20;
const FEEDBACK_MS = 250;

/**
 * How a live session starts: the simulated link, the playout delay and the bitrate.
 *
 * @example
 * const options: LiveOptions = { link: { kbps: 8, delayMs: 40, jitterMs: 10, loss: 0.05 }, jitterFrames: 3, kbps: 6, auto: true };
 * const live = await LiveSession.create(ctx, codec, options);
 */
export interface LiveOptions {
  /** The simulated network between encoder and decoder (change it later with `setLink`). */
  link: LinkConfig;
  /** Playout delay in frames (jitter buffer target). */
  jitterFrames?: number;
  /** Starting codec bitrate, kbps (a multiple of 0.2 in 0.2..9.2; default 6). */
  kbps?: number;
  /** Let the bitrate controller set the rate from receiver feedback (default false). */
  auto?: boolean;
  /** Stop capturing after this many frames (a clip's length); undefined = until stop(). */
  maxFrames?: number;
  /**
   * Keep every played frame in `decoded` and `playedQuantizers` (for analysis and A/B playback).
   * Default: only with `maxFrames`, whose clip bounds them; an open-ended stream keeps none,
   * since 16 kHz float audio would grow the page's memory by 3.8 MB a minute for as long as it runs.
   */
  keepDecoded?: boolean;
}

/**
 * A live session's counters, updated after every frame (`onStats`) and readable any time.
 *
 * @example
 * live.onStats = (s: LiveStats) => console.log(`${s.kbps} kbps, ${s.packetsDropped} lost, ${s.concealed} concealed`);
 */
export interface LiveStats {
  framesCaptured: number;
  packetsSent: number;
  packetsDropped: number;
  concealed: number;
  late: number;
  kbps: number;
  auto: boolean;
  bytesSent: number;
  /** Frame (20 ms) plus codec look-ahead (none for Lyra v2: the decoder is frame-aligned). */
  algorithmicLatencyMs: number;
  /** Algorithmic + jitter buffer target + network delay (what the configuration implies). */
  configuredLatencyMs: number;
  /** Measured capture-to-playback time of the latest played frame (audio clock). */
  measuredLatencyMs: number | null;
  /** Worker time per frame (encode + decode), ms, recent average. */
  engineMsPerFrame: number;
  underruns: number;
  switches: { frame: number; kbps: number; reason: string }[];
  done: boolean;
}

/**
 * The live pipeline in one object: feed `input` from any AudioNode at 16 kHz, connect `output`
 * to the speakers; frames are encoded, sent over a {@link SimulatedLink}, reordered by a
 * {@link JitterBuffer}, decoded or concealed, and played. The rate is set by hand
 * (`setBitrate`) or by a {@link BitrateController} (`setAuto(true)`).
 *
 * @example
 * const ctx = new AudioContext({ sampleRate: 16000 });
 * const codec = await (await Whittle.create()).codec('lyra-v2');
 * const live = await LiveSession.create(ctx, codec, { link: { kbps: 8, delayMs: 40, jitterMs: 10, loss: 0 } });
 * ctx.createMediaStreamSource(await navigator.mediaDevices.getUserMedia({ audio: true })).connect(live.input);
 * live.output.connect(ctx.destination);
 * live.setLink({ loss: 0.1 }); // the decoder conceals what the link drops
 */
export class LiveSession {
  /** Connect your source here (a microphone, a clip): mono, 16 kHz. */
  readonly input: AudioWorkletNode;
  /** Connect this to the speakers: the decoded stream, after the jitter buffer. */
  readonly output: AudioWorkletNode;
  private readonly link: SimulatedLink<Uint8Array>;
  private readonly jitter: JitterBuffer<Uint8Array>;
  private readonly controller: BitrateController;
  private readonly encoder: StreamEncoder;
  private readonly decoder: StreamDecoder;
  private chain: Promise<void> = Promise.resolve();
  private captureAt = new Map<number, number>();
  private auto: boolean;
  private jitterFrames: number;
  private minDelay = Infinity;
  private window = { bits: 0, sent: 0, dropped: 0, delay: 0, since: 0 };
  private engineMs: number[] = [];
  private stopped = false;
  /** Decoded audio in playout order (concealed frames included), for analysis and A/B playback (see LiveOptions.keepDecoded). */
  readonly decoded: Float32Array[] = [];
  /** Quantizer count of each played frame (0 = concealed; see LiveOptions.keepDecoded). */
  readonly playedQuantizers: number[] = [];
  private readonly keepDecoded: boolean;
  /** Frames played out (decoded or concealed), kept or not. */
  private played = 0;
  /** Counters, updated in place after every frame. */
  readonly stats: LiveStats;
  /** Called after every frame and once when a clip's last frame has played. */
  onStats: ((s: LiveStats) => void) | null = null;

  private constructor(
    context: AudioContext,
    codec: Codec,
    private readonly options: LiveOptions,
  ) {
    this.input = new AudioWorkletNode(context, 'whittle-capture', { numberOfInputs: 1, numberOfOutputs: 0 });
    this.output = new AudioWorkletNode(context, 'whittle-playback', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    this.link = new SimulatedLink(options.link);
    this.jitterFrames = options.jitterFrames ?? 3;
    this.jitter = new JitterBuffer(this.jitterFrames);
    const kbps = options.kbps ?? 6;
    this.controller = new BitrateController({ startKbps: kbps });
    this.encoder = codec.encoder({ kbps });
    this.decoder = codec.decoder();
    this.auto = options.auto ?? false;
    this.keepDecoded = options.keepDecoded ?? options.maxFrames !== undefined;
    this.stats = {
      framesCaptured: 0,
      packetsSent: 0,
      packetsDropped: 0,
      concealed: 0,
      late: 0,
      kbps,
      auto: this.auto,
      bytesSent: 0,
      algorithmicLatencyMs: FRAME_MS,
      configuredLatencyMs: 0,
      measuredLatencyMs: null,
      engineMsPerFrame: 0,
      underruns: 0,
      switches: [],
      done: false,
    };
    this.updateConfigured();
    this.input.port.onmessage = (ev: MessageEvent<{ index: number; at: number; pcm: Float32Array }>) => this.onFrame(ev.data);
    this.output.port.onmessage = (ev: MessageEvent<{ type: string; id: number; at: number; underruns: number }>) => {
      const captured = this.captureAt.get(ev.data.id);
      if (captured !== undefined) {
        // From the first sample of the frame being captured to it being played.
        this.stats.measuredLatencyMs = (ev.data.at - captured) * 1000 + FRAME_MS;
        this.captureAt.delete(ev.data.id);
      }
      this.stats.underruns = ev.data.underruns;
    };
  }

  /**
   * Loads the capture and playback worklets into `context` and wires a session to `codec`
   * (which it uses for one encoder and one decoder: give each session its own Codec).
   * `context` must run at 16 kHz: INVALID_ARGUMENT otherwise.
   */
  static async create(context: AudioContext, codec: Codec, options: LiveOptions): Promise<LiveSession> {
    if (context.sampleRate !== 16000) {
      throw new WhittleError('INVALID_ARGUMENT', 'LiveSession needs an AudioContext at 16 kHz (Lyra v2 runs at 16 kHz; the browser resamples the microphone)', { sampleRate: context.sampleRate });
    }
    await context.audioWorklet.addModule(captureUrl);
    await context.audioWorklet.addModule(playbackUrl);
    return new LiveSession(context, codec, options);
  }

  /** Sets the codec rate from the next frame (kbps, a multiple of 0.2 in 0.2..9.2). */
  setBitrate(kbps: number): void {
    this.encoder.setBitrate(kbps);
    this.recordSwitch(this.encoder.kbps, 'manual');
  }

  /** Hands the rate to the bitrate controller (true) or keeps it where it is (false). */
  setAuto(auto: boolean): void {
    this.auto = auto;
    this.stats.auto = auto;
  }

  /** Changes the simulated network mid-stream. */
  setLink(config: Partial<LinkConfig>): void {
    this.link.set(config);
    this.updateConfigured();
  }

  /** Changes the playout delay (jitter buffer target), in 20 ms frames. */
  setJitterFrames(frames: number): void {
    this.jitterFrames = frames;
    this.jitter.setTarget(frames);
    this.updateConfigured();
  }

  /** Resolves when every captured frame has been played out (or concealed). */
  async finished(): Promise<void> {
    await this.chain;
  }

  /** Stops capturing; frames already sent still play out. */
  stop(): void {
    this.stopped = true;
    this.input.port.onmessage = null;
    this.input.disconnect();
  }

  private updateConfigured(): void {
    const l = this.link.settings;
    this.stats.configuredLatencyMs = FRAME_MS + this.jitterFrames * FRAME_MS + l.delayMs + l.jitterMs / 2;
  }

  private recordSwitch(kbps: number, reason: string): void {
    if (kbps === this.stats.kbps) return;
    this.stats.kbps = kbps;
    this.stats.switches.push({ frame: this.encoder.frameIndex, kbps, reason });
  }

  private onFrame(frame: { index: number; at: number; pcm: Float32Array }): void {
    if (this.stopped) return;
    const max = this.options.maxFrames;
    if (max !== undefined && frame.index >= max) {
      if (frame.index === max) this.chain = this.chain.then(() => this.drain());
      return;
    }
    this.stats.framesCaptured++;
    this.captureAt.set(frame.index, frame.at);
    // One frame at a time through the worker: the codec state must advance in order.
    this.chain = this.chain.then(() => this.step(frame.index, frame.pcm)).catch((err: unknown) => console.error('[whittle live]', err));
  }

  private async step(index: number, pcm: Float32Array): Promise<void> {
    const now = index * FRAME_MS;
    const t0 = performance.now();
    const { packets } = await this.encoder.encode(pcm);
    this.stats.packetsSent++;
    this.stats.bytesSent += packets.length;
    this.window.sent++;
    if (!this.link.send(packets, now)) {
      this.stats.packetsDropped++;
      this.window.dropped++;
    }
    this.receive(now);
    if (now - this.window.since >= FEEDBACK_MS) this.feedback(now);
    await this.playout();
    this.engineMs.push(performance.now() - t0);
    if (this.engineMs.length > 50) this.engineMs.shift();
    this.stats.engineMsPerFrame = this.engineMs.reduce((a, b) => a + b, 0) / this.engineMs.length;
    this.onStats?.(this.stats);
  }

  private receive(now: number): void {
    for (const d of this.link.receive(now)) {
      this.window.bits += d.packet.byteLength * 8;
      const delay = d.arrivesAt - d.sentAt;
      this.minDelay = Math.min(this.minDelay, delay);
      this.window.delay = Math.max(this.window.delay, delay - this.minDelay);
      this.jitter.push((d.packet[1]! << 8) | d.packet[2]!, d.packet);
    }
    this.stats.late = this.jitter.late;
  }

  /** Receiver report -> controller (in auto mode). */
  private feedback(now: number): void {
    const w = this.window;
    const elapsed = Math.max(FRAME_MS, now - w.since);
    if (this.auto) {
      const d: Decision = this.controller.update({ now, receivedKbps: w.bits / elapsed, loss: w.sent ? w.dropped / w.sent : 0, queueDelayMs: w.delay });
      if (d.kbps !== this.encoder.kbps) {
        this.encoder.setBitrate(d.kbps);
        this.recordSwitch(this.encoder.kbps, d.reason);
      }
    }
    this.window = { bits: 0, sent: 0, dropped: 0, delay: 0, since: now };
  }

  private async playout(): Promise<void> {
    const slot = this.jitter.pop();
    if (!slot) return;
    let pcm: Float32Array;
    let quantizers = 0;
    if (slot.packet) {
      const out = await this.decoder.decode(slot.packet);
      pcm = out.pcm;
      quantizers = out.quantizers[0] ?? 0;
    } else {
      pcm = await this.decoder.conceal();
      this.stats.concealed++;
    }
    this.played++;
    if (this.keepDecoded) {
      this.decoded.push(pcm);
      this.playedQuantizers.push(quantizers);
    }
    const copy = pcm.slice();
    this.output.port.postMessage({ id: slot.frame, pcm: copy }, [copy.buffer]);
  }

  /** After the last captured frame: let the network and jitter buffer empty. */
  private async drain(): Promise<void> {
    const last = this.stats.framesCaptured;
    for (let extra = 0; this.played < last && extra < 500; extra++) {
      const now = (last + extra) * FRAME_MS;
      this.receive(now);
      await this.playout();
    }
    this.stats.done = true;
    this.onStats?.(this.stats);
  }
}

