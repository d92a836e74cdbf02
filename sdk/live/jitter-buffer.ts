/**
 * Network jitter buffer: packets arrive out of order and late; playout takes frames in order,
 * each when its turn comes. Frame f's turn is `(f + delay) * 20 ms` on the sender's clock (frame
 * f leaves at f * 20 ms), so a packet is on time when its transit (arrival - send time) is at most
 * the playout delay. A frame that has not arrived at its turn is reported missing (the decoder
 * conceals it); one that arrives after its turn is counted late and discarded.
 *
 * The delay adapts to the transit times it measures (unless `adaptive: false`):
 * - it starts `startFrames` frames behind the first packet (the pre-buffer);
 * - a late packet grows it at once to cover that packet's transit (up to `maxFrames` beyond the
 *   base transit): a delay seen once is likely to come again, and every late packet is a
 *   concealed frame;
 * - after `stableFrames` frames without a late packet it shrinks by one frame, if the recent
 *   transits (the `quantile` of the last `windowPackets`) fit in the shorter delay, down to
 *   `minFrames` beyond the base transit: latency is won back slowly, since shrinking too early
 *   costs late packets;
 * - growing by k frames holds playout for k turns (the playback buffer rides them out or
 *   conceals); shrinking releases two frames in one turn (the playback buffer trims the surplus
 *   with a crossfade).
 * It also keeps RFC 3550's interarrival jitter estimate (J += (|D| - J) / 16), reported in stats.
 *
 * Packets of different sizes: a slow link's bottleneck takes longer to carry a bigger packet (on
 * the demo's 16 kbps link, 13 ms for a 9.2 kbps packet against 5.5 ms at 3.2 kbps), so a bitrate
 * switch moves every transit at once, and a delay shrunk during a low-rate spell made the first
 * packets after a switch up late (and grew the delay) though the network had not changed. The
 * caller says how much sooner each packet came than the stream's largest would have (`push`'s
 * `headroomMs`, see deliver.ts); the buffer measures each transit as if the packet were the
 * largest, so its delay always covers the largest packet and a switch is neither late nor growth.
 *
 * Times are milliseconds on the caller's clock, which must be the sender's: frame f sent at
 * f * frameMs plus a constant (only differences of transit matter). Callers that pass no times
 * get a clock of one frame per `pop()`: pop once every 20 ms and push what arrived in between.
 * Frame indices are the 16-bit ones from the packet header.
 */

/**
 * One playout turn of a {@link JitterBuffer}: the frame's packet, or `null` with why it is
 * missing (the decoder conceals it).
 *
 * @example
 * const slot: Playout<Uint8Array> | null = jitter.pop();
 * const pcm = slot?.packet ? (await decoder.decode(slot.packet)).pcm : await decoder.conceal();
 */
export type Playout<T> = { frame: number; packet: T } | { frame: number; packet: null; reason: 'lost' | 'late' };

/**
 * How a {@link JitterBuffer} sizes its delay (frames of `frameMs`).
 *
 * @example
 * const options: JitterOptions = { startFrames: 3, minFrames: 1, maxFrames: 25, stableFrames: 50 };
 * const jitter = new JitterBuffer<Uint8Array>(options);
 */
export interface JitterOptions {
  /** Frames of buffering before playout starts, and the first target (default 3). */
  startFrames?: number;
  /** Adapt the delay to measured transit (default true); false keeps `startFrames` for good. */
  adaptive?: boolean;
  /** The delay never shrinks below the base transit plus this many frames, minus one (default 1: just the base transit). */
  minFrames?: number;
  /** The delay never grows beyond the base transit plus this many frames (default 25: 500 ms). */
  maxFrames?: number;
  /** Frames without a late packet before the delay shrinks by one (default 50: 1 s). */
  stableFrames?: number;
  /** Recent arrivals whose transit decides how far the delay may shrink (default 150: 3 s). */
  windowPackets?: number;
  /** The share of those transits the shorter delay must cover (default 1: all of them). */
  quantile?: number;
  /** Milliseconds per frame (default 20). */
  frameMs?: number;
}

/**
 * What a {@link JitterBuffer} measures and decided.
 *
 * @example
 * const s: JitterStats = jitter.stats;
 * console.log(`${s.late} late, target ${s.targetFrames} frames, jitter ${s.jitterMs.toFixed(1)} ms`);
 */
export interface JitterStats {
  /** Packets that arrived after their turn (discarded). */
  late: number;
  /** Turns that had no packet to play. */
  concealed: number;
  /** Frames of buffering beyond the base transit the delay now aims for (1 = just the base transit). */
  targetFrames: number;
  /** Playout delay: a frame's turn after it was sent, ms. */
  delayMs: number;
  /** The smallest transit among recent arrivals, ms, as for the stream's largest packet (the link's base delay; relative when the caller's clock is). */
  baseTransitMs: number;
  /** RFC 3550 interarrival jitter estimate, ms. */
  jitterMs: number;
  /** Times the delay grew / shrank. */
  grew: number;
  shrank: number;
}

/** Quantile q (0..1) of `values` (not empty), nearest rank. */
function quantileOf(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Reorders packets by frame index and releases each at its turn (see the top of this file).
 *
 * @example
 * const jitter = new JitterBuffer<Uint8Array>({ startFrames: 3 });
 * for (const d of link.receive(now)) jitter.push((d.packet[1]! << 8) | d.packet[2]!, d.packet, d.arrivesAt); // header frame index
 * for (const slot of jitter.popDue(now)) play(slot); // every 20 ms
 */
export class JitterBuffer<T> {
  private readonly packets = new Map<number, T>();
  private next: number | null = null; // next frame index (unwrapped) to play
  private newest = -1;
  /** Frame f's turn is (f + delayFrames) * frameMs; null until the first packet. */
  private delayFrames: number | null = null;
  private readonly adaptive: boolean;
  private startFrames: number;
  private readonly minFrames: number;
  private readonly maxFrames: number;
  private readonly stableFrames: number;
  private readonly windowPackets: number;
  private readonly quantile: number;
  private readonly frameMs: number;
  /** Recent transits, ms (ring of `windowPackets`). */
  private transits: number[] = [];
  private lastTransit: number | null = null;
  /** Turns since the delay last changed or a packet was late. */
  private sinceChange = 0;
  /** The implicit clock (no times given): pops so far. */
  private ticks = 0;
  private jitter = 0;
  private grew = 0;
  private shrank = 0;
  /** Packets that arrived after their turn (discarded). */
  late = 0;
  /** Turns that had no packet to play. */
  concealed = 0;

  /** `options` as a number: `startFrames` (the fixed target of earlier versions, now the starting one). */
  constructor(options: JitterOptions | number = {}) {
    const o = typeof options === 'number' ? { startFrames: options } : options;
    this.startFrames = Math.max(1, Math.round(o.startFrames ?? 3));
    this.adaptive = o.adaptive ?? true;
    this.minFrames = Math.max(1, Math.round(o.minFrames ?? 1));
    this.maxFrames = Math.max(this.minFrames, Math.round(o.maxFrames ?? 25));
    this.stableFrames = Math.max(1, Math.round(o.stableFrames ?? 50));
    this.windowPackets = Math.max(1, Math.round(o.windowPackets ?? 150));
    this.quantile = Math.min(1, Math.max(0, o.quantile ?? 1));
    this.frameMs = o.frameMs ?? 20;
  }

  /** The smallest recent transit, ms. */
  private baseTransit(): number {
    return Math.min(...this.transits);
  }

  /** The delay, in frames, that plays a packet of `transitMs` on time. */
  private framesFor(transitMs: number): number {
    return Math.ceil(transitMs / this.frameMs - 1e-9);
  }

  /** The delay's bounds: minFrames .. maxFrames frames of buffering beyond the base transit. */
  private bounded(frames: number): number {
    const base = this.framesFor(this.baseTransit());
    return Math.min(base + this.maxFrames - 1, Math.max(base + this.minFrames - 1, frames));
  }

  /**
   * Sets the buffering to `frames` beyond the base transit now (at least 1); an adaptive buffer
   * goes on adapting from there. Before the first packet, it sets the pre-buffer.
   */
  setTarget(frames: number): void {
    const target = Math.max(1, Math.round(frames));
    if (this.delayFrames === null) {
      this.startFrames = target;
      return;
    }
    this.delayFrames = this.framesFor(this.baseTransit()) + target - 1;
    this.sinceChange = 0;
  }

  get stats(): JitterStats {
    const base = this.transits.length > 0 ? this.baseTransit() : 0;
    const delay = this.delayFrames ?? this.framesFor(base) + this.startFrames - 1;
    return {
      late: this.late,
      concealed: this.concealed,
      targetFrames: delay - this.framesFor(base) + 1,
      delayMs: delay * this.frameMs,
      baseTransitMs: base,
      jitterMs: this.jitter,
      grew: this.grew,
      shrank: this.shrank,
    };
  }

  /** Unwraps a 16-bit header index to the one nearest the newest seen. */
  private unwrap(index16: number): number {
    if (this.newest < 0) return index16;
    const base = this.newest - (this.newest & 0xffff);
    let candidate = base + index16;
    if (candidate - this.newest > 0x8000) candidate -= 0x10000;
    else if (this.newest - candidate > 0x8000) candidate += 0x10000;
    return candidate;
  }

  /**
   * Adds a packet under its 16-bit header frame index, arrived at `arrivedAtMs` (default: the
   * implicit clock, the turn the next `pop()` plays). A packet whose turn has passed counts as late.
   * `headroomMs`: how much sooner this packet arrived than one of the stream's largest size would
   * have (default 0); its transit is measured as the largest packet's (see the top of this file).
   */
  push(frameIndex16: number, packet: T, arrivedAtMs: number = this.ticks * this.frameMs, headroomMs = 0): void {
    const frame = this.unwrap(frameIndex16);
    const transit = arrivedAtMs + Math.max(0, headroomMs) - frame * this.frameMs;
    this.measure(transit);
    if (this.delayFrames === null) this.delayFrames = this.framesFor(transit) + this.startFrames - 1;
    if (this.next !== null && frame < this.next) {
      this.late++;
      if (this.adaptive) {
        // Grow at once to what this packet needed: later ones on the same path are likely as slow.
        const needed = this.bounded(this.framesFor(transit));
        if (needed > this.delayFrames) {
          this.delayFrames = needed;
          this.grew++;
        }
        this.sinceChange = 0;
      }
      return;
    }
    this.packets.set(frame, packet);
    this.newest = Math.max(this.newest, frame);
  }

  /** Records a transit: the recent window and RFC 3550's jitter estimate. */
  private measure(transit: number): void {
    if (this.lastTransit !== null) this.jitter += (Math.abs(transit - this.lastTransit) - this.jitter) / 16;
    this.lastTransit = transit;
    this.transits.push(transit);
    if (this.transits.length > this.windowPackets) this.transits.shift();
  }

  /** After `stableFrames` quiet turns, one frame less delay if the recent transits allow it. */
  private maybeShrink(): void {
    if (!this.adaptive || this.delayFrames === null || this.transits.length === 0) return;
    if (++this.sinceChange < this.stableFrames) return;
    this.sinceChange = 0;
    const needed = this.bounded(this.framesFor(quantileOf(this.transits, this.quantile)));
    if (needed < this.delayFrames) {
      this.delayFrames--;
      this.shrank++;
    }
  }

  /** Whether frame `frame` is due at `nowMs`. */
  private due(frame: number, nowMs: number): boolean {
    return this.delayFrames !== null && nowMs >= (frame + this.delayFrames) * this.frameMs - 1e-9;
  }

  /**
   * The next frame if its turn has come by `nowMs` (default: the implicit clock, which this call
   * advances by one frame), or null: before playout starts, or while a grown delay holds it.
   */
  pop(nowMs?: number): Playout<T> | null {
    const now = nowMs ?? this.ticks * this.frameMs;
    if (nowMs === undefined) {
      this.ticks++;
      this.maybeShrink();
    }
    if (this.next === null) {
      if (this.packets.size === 0) return null;
      const first = Math.min(...this.packets.keys());
      if (!this.due(first, now)) return null; // pre-buffering
      this.next = first;
    }
    if (!this.due(this.next, now)) return null;
    const frame = this.next;
    this.next++;
    const packet = this.packets.get(frame);
    this.packets.delete(frame);
    if (packet !== undefined) return { frame, packet };
    this.concealed++;
    return { frame, packet: null, reason: frame > this.newest ? 'late' : 'lost' };
  }

  /**
   * Every frame whose turn has come by `nowMs`, in order: usually one per 20 ms, none while a
   * grown delay holds playout, two when the delay shrinks. Call once per frame time.
   */
  popDue(nowMs: number): Playout<T>[] {
    this.maybeShrink();
    const out: Playout<T>[] = [];
    for (let slot = this.pop(nowMs); slot; slot = this.pop(nowMs)) out.push(slot);
    return out;
  }
}
