/**
 * A live codec session: capture worklet -> codec worker (encode) -> simulated network ->
 * jitter buffer -> codec worker (decode, or conceal a lost frame) -> playback worklet, with the
 * bitrate set by hand or by the controller from receiver feedback.
 *
 * Everything is timed on the AudioContext's clock (frame k is captured at k x 20 ms), so the
 * simulated network is deterministic for a given seed, whatever the machine's speed. The audio
 * clock is also the master of playback: the playback worklet's PlayoutBuffer (playout.ts) takes
 * one frame every 20 ms of audio and absorbs what the main thread and the worker add (their
 * delays, pauses, a busy machine): it conceals an empty slot rather than wait, grows on
 * underruns and drops frames to win the latency back once the stream is steady again.
 *
 * Real-time rules here: the codec is warmed up before the first frame (`create`); each frame's
 * encode and decode go to the worker together (one round trip); frames that piled up during a
 * pause go as one batch; and work never piles up without bound: beyond `maxBacklog` waiting
 * frames the oldest are skipped, not queued (playback conceals their slots).
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
import { deliver } from './deliver.ts';
import { JitterBuffer, type JitterOptions, type JitterStats, type Playout } from './jitter-buffer.ts';
import { SimulatedLink, type LinkConfig } from './network.ts';
import type { PlayoutOptions, PlayoutStats } from './playout.ts';

const FRAME_MS = 20;
const FRAME_SAMPLES = 320;

function concat(frames: Float32Array[]): Float32Array {
  const out = new Float32Array(frames.length * FRAME_SAMPLES);
  frames.forEach((f, i) => out.set(f, i * FRAME_SAMPLES));
  return out;
}
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
  /** The network jitter buffer's starting delay in frames beyond the link's base transit (default 3); it adapts from there. */
  jitterFrames?: number;
  /**
   * The network jitter buffer's adaptation (defaults: grow at once on a late packet, shrink one
   * frame per quiet second, 1 to 25 frames beyond the base transit); `adaptive: false` keeps
   * `jitterFrames` for good.
   */
  jitter?: Omit<JitterOptions, 'startFrames' | 'frameMs'>;
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
  /** The playback worklet's adaptive buffer (defaults: start at 2 frames, between 2 and 12). */
  playout?: PlayoutOptions;
  /**
   * Captured frames that may wait for the worker (default 10: 200 ms); beyond that the oldest
   * are skipped rather than encoded. A pipeline behind real time cannot catch up by queuing more.
   */
  maxBacklog?: number;
  /** Warm-up frames run through the codec before the session starts (default 8; 0: none). */
  warmUpFrames?: number;
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
  /** Algorithmic + jitter buffer target + network delay + playback target (what the pipeline now aims for). */
  configuredLatencyMs: number;
  /** Measured capture-to-playback time of the latest played frame (audio clock). */
  measuredLatencyMs: number | null;
  /** Main-thread time per frame from starting its encode to handing its decoded slot to playback, ms, recent average. */
  engineMsPerFrame: number;
  /**
   * Where a frame's time goes, ms, recent averages: `wait` from capture message to its turn on
   * the main thread, `encode` / `decode` the round trips to the worker (`worker`: the engine's
   * own share of both), `step` the whole of one frame's work.
   */
  stageMs: { wait: number; encode: number; decode: number; worker: number; step: number };
  /** Times playback ran dry (each a run of concealed 20 ms slots; see `playout`). */
  underruns: number;
  /** Frames skipped at the sender because the pipeline was behind (maxBacklog). */
  skipped: number;
  /** Jitter-buffer slots passed over unplayed for the same reason (neither decoded nor concealed by the decoder). */
  slotsSkipped: number;
  /** The most captured frames ever waiting for the worker at once. */
  backlogMax: number;
  /** Worker batches so far (fewer than frames when frames piled up during a pause). */
  batches: number;
  /** The network jitter buffer: its adaptive target and playout delay, measured jitter (RFC 3550), late packets. */
  jitter: JitterStats;
  /** The playback worklet's buffer: target depth, concealed slots, frames dropped to win latency back. Null until playback starts. */
  playout: PlayoutStats | null;
  /** The codec's warm-up before the first frame, ms per frame (the first is the cold one). */
  warmUpMs: number[];
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
  private minDelay = Infinity;
  private window = { bits: 0, sent: 0, dropped: 0, delay: 0, since: 0 };
  private engineMs: number[] = [];
  private readonly maxBacklog: number;
  /** Captured frames not yet worked on, oldest first. */
  private pending: { index: number; pcm: Float32Array; queuedAt: number }[] = [];
  private pumping = false;
  private stopped = false;
  /** Decoded audio in playout order (concealed frames included), for analysis and A/B playback (see LiveOptions.keepDecoded). */
  readonly decoded: Float32Array[] = [];
  /** Quantizer count of each played frame (0 = concealed, -1 = skipped behind real time and kept as silence so `decoded` stays aligned in time; see LiveOptions.keepDecoded). */
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
    warmUpMs: number[],
  ) {
    this.input = new AudioWorkletNode(context, 'whittle-capture', { numberOfInputs: 1, numberOfOutputs: 0 });
    this.output = new AudioWorkletNode(context, 'whittle-playback', { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1], processorOptions: options.playout ?? {} });
    this.maxBacklog = Math.max(1, options.maxBacklog ?? 10);
    this.link = new SimulatedLink(options.link);
    this.jitter = new JitterBuffer({ ...options.jitter, startFrames: options.jitterFrames ?? 3, frameMs: FRAME_MS });
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
      stageMs: { wait: 0, encode: 0, decode: 0, worker: 0, step: 0 },
      underruns: 0,
      skipped: 0,
      slotsSkipped: 0,
      backlogMax: 0,
      batches: 0,
      jitter: this.jitter.stats,
      playout: null,
      warmUpMs,
      switches: [],
      done: false,
    };
    this.updateConfigured();
    this.input.port.onmessage = (ev: MessageEvent<{ index: number; at: number; pcm: Float32Array }>) => this.onFrame(ev.data);
    this.output.port.onmessage = (ev: MessageEvent<{ type: 'playing' | 'stats'; id?: number; at?: number; stats: PlayoutStats }>) => {
      const { id, at } = ev.data;
      if (id !== undefined && at !== undefined) {
        const captured = this.captureAt.get(id);
        // From the first sample of the frame being captured to it being played.
        if (captured !== undefined) this.stats.measuredLatencyMs = (at - captured) * 1000 + FRAME_MS;
        // Frames before this one were played or dropped: forget them (insertion order is frame order).
        for (const k of this.captureAt.keys()) {
          if (k > id) break;
          this.captureAt.delete(k);
        }
      }
      this.stats.playout = ev.data.stats;
      this.stats.underruns = ev.data.stats.underruns;
      this.updateConfigured();
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
    // Before the first frame, not during it: a cold onnxruntime session's first runs are slow.
    const warmUp = options.warmUpFrames ?? 8;
    const warmUpMs = warmUp > 0 ? await codec.warmUp(warmUp) : [];
    return new LiveSession(context, codec, options, warmUpMs);
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

  /** Sets the network jitter buffer's delay to `frames` (20 ms) beyond the base transit now; it adapts from there (unless `jitter.adaptive` is false). */
  setJitterFrames(frames: number): void {
    this.jitter.setTarget(frames);
    this.stats.jitter = this.jitter.stats;
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
    // The playback buffer's target (adaptive) is part of it: what the pipeline currently aims for.
    const playoutFrames = this.stats.playout?.targetFrames ?? this.options.playout?.startFrames ?? 2;
    // The jitter buffer's target adapts too (before the first packet: the configured start).
    this.stats.configuredLatencyMs = FRAME_MS + this.stats.jitter.targetFrames * FRAME_MS + l.delayMs + l.jitterMs / 2 + playoutFrames * FRAME_MS;
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
    this.pending.push({ index: frame.index, pcm: frame.pcm, queuedAt: performance.now() });
    this.stats.backlogMax = Math.max(this.stats.backlogMax, this.pending.length);
    if (this.pumping) return;
    // One batch at a time through the worker: the codec state must advance in order.
    this.pumping = true;
    this.chain = this.chain
      .then(() => this.pump())
      .catch((err: unknown) => console.error('[whittle live]', err))
      .finally(() => (this.pumping = false));
  }

  /**
   * Works through the captured frames: all that are waiting go in one batch (one encode and at
   * most two decode round trips, however many frames a pause piled up), and a frame with more
   * than `maxBacklog` newer ones waiting is skipped, not queued: it could only play late.
   */
  private async pump(): Promise<void> {
    while (this.pending.length > 0) {
      while (this.pending.length > this.maxBacklog) this.skip(this.pending.shift()!);
      await this.steps(this.pending.splice(0, this.pending.length));
    }
  }

  /**
   * The network and jitter buffer at frame `index`'s time: what arrived, feedback, the slots
   * due (usually one; none while the jitter buffer grows its delay, two when it shrinks it).
   */
  private advance(index: number): Playout<Uint8Array>[] {
    const now = index * FRAME_MS;
    this.receive(now);
    if (now - this.window.since >= FEEDBACK_MS) this.feedback(now);
    const slots = this.jitter.popDue(now);
    this.stats.jitter = this.jitter.stats;
    this.updateConfigured();
    return slots;
  }

  /** A frame dropped at the sender for being stale; its playout slot passes unplayed. */
  private skip(frame: { index: number }): void {
    this.encoder.skip(1);
    this.stats.skipped++;
    const passed = this.advance(frame.index).length;
    for (let k = 0; k < passed; k++) {
      this.played++; // the playback buffer conceals the gap if it runs dry
      this.stats.slotsSkipped++;
      if (this.keepDecoded) {
        this.decoded.push(new Float32Array(FRAME_SAMPLES)); // a place holder: `decoded` stays one frame per slot
        this.playedQuantizers.push(-1);
      }
    }
  }

  private send(packet: Uint8Array, now: number): void {
    this.stats.packetsSent++;
    this.stats.bytesSent += packet.length;
    this.window.sent++;
    if (!this.link.send(packet, now)) {
      this.stats.packetsDropped++;
      this.window.dropped++;
    }
  }

  private async steps(batch: { index: number; pcm: Float32Array; queuedAt: number }[]): Promise<void> {
    const t0 = performance.now();
    for (const f of batch) this.average('wait', t0 - f.queuedAt);
    // What has arrived by a frame's time cannot include its own packet (a link takes more than
    // 0 ms to carry it), so the first frame's slots are known before encoding, and their decode
    // goes to the worker with the encode: one round trip per frame when keeping up, not two in a row.
    const first = this.advance(batch[0]!.index);
    const pcm = batch.length === 1 ? batch[0]!.pcm : concat(batch.map((f) => f.pcm));
    const encoding = this.timed('encode', this.encoder.encode(pcm));
    const decoding = first.length > 0 ? this.playout(first) : Promise.resolve(0);
    const { packets, offsets, engineMs } = await encoding;
    // Each packet leaves at its frame's time; each later frame's slot is what had arrived by then.
    const slots: Playout<Uint8Array>[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (i > 0) slots.push(...this.advance(batch[i]!.index));
      this.send(packets.subarray(offsets[i]!, offsets[i + 1]!), batch[i]!.index * FRAME_MS);
    }
    let decodeEngineMs = await decoding;
    if (slots.length > 0) decodeEngineMs += await this.playout(slots);
    const perFrame = (performance.now() - t0) / batch.length;
    this.average('worker', (engineMs + decodeEngineMs) / batch.length);
    this.average('step', perFrame);
    this.engineMs.push(perFrame);
    if (this.engineMs.length > 50) this.engineMs.shift();
    this.stats.engineMsPerFrame = this.engineMs.reduce((a, b) => a + b, 0) / this.engineMs.length;
    this.stats.batches++;
    this.onStats?.(this.stats);
  }

  /** Exponential moving average of one stage's time (about the last 50 frames). */
  private average(stage: keyof LiveStats['stageMs'], ms: number): void {
    const s = this.stats.stageMs;
    s[stage] = s[stage] === 0 ? ms : s[stage] + (ms - s[stage]) / 50;
  }

  private async timed<T>(stage: 'encode' | 'decode', call: Promise<T>): Promise<T> {
    const t0 = performance.now();
    const out = await call;
    this.average(stage, performance.now() - t0);
    return out;
  }

  private receive(now: number): void {
    for (const d of this.link.receive(now)) {
      this.window.bits += d.packet.byteLength * 8;
      const delay = d.arrivesAt - d.sentAt;
      this.minDelay = Math.min(this.minDelay, delay);
      this.window.delay = Math.max(this.window.delay, delay - this.minDelay);
      deliver(this.jitter, this.link, d);
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

  /** Decodes (or conceals) jitter-buffer slots in one call and hands them to playback; returns the worker's engine time, ms. */
  private async playout(slots: Playout<Uint8Array>[]): Promise<number> {
    const out = await this.timed('decode', this.decoder.decodeSlots(slots.map((s) => s.packet)));
    slots.forEach((slot, i) => {
      const pcm = out.pcm.slice(i * FRAME_SAMPLES, (i + 1) * FRAME_SAMPLES); // its own buffer, transferred to the worklet
      if (!slot.packet) this.stats.concealed++;
      this.played++;
      if (this.keepDecoded) {
        this.decoded.push(pcm.slice());
        this.playedQuantizers.push(out.quantizers[i]!);
      }
      this.output.port.postMessage({ id: slot.frame, pcm }, [pcm.buffer]);
    });
    return out.engineMs;
  }

  /** After the last captured frame: let the network and jitter buffer empty. */
  private async drain(): Promise<void> {
    const last = this.stats.framesCaptured;
    for (let extra = 0; this.played < last && extra < 500; extra++) {
      const now = (last + extra) * FRAME_MS;
      this.receive(now);
      const slots = this.jitter.popDue(now);
      this.stats.jitter = this.jitter.stats;
      if (slots.length > 0) await this.playout(slots);
    }
    this.output.port.postMessage({ end: true }); // the tail of a clip is not an underrun
    this.stats.done = true;
    this.onStats?.(this.stats);
  }
}

