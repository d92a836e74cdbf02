/**
 * A simulated network link for the live codec demo and tests: a bottleneck of `kbps` with a
 * FIFO queue (so sending faster than the link builds queueing delay, as on a real link), a
 * base one-way delay, uniform jitter, and Gilbert-Elliott loss (bursty: a "bad" state that
 * drops most packets and that the link enters and leaves at random). Deterministic per seed.
 *
 * Times are in milliseconds on the caller's clock; nothing here reads a real clock.
 */
import { createRng as rng } from '../../core/random.ts';

/**
 * A simulated link's bandwidth, delay, jitter and loss.
 *
 * @example
 * const link = new SimulatedLink<Uint8Array>({ kbps: 8, delayMs: 40, jitterMs: 10, loss: 0.05, burstiness: 0.7, seed: 1 } satisfies LinkConfig);
 */
export interface LinkConfig {
  /** Bottleneck bandwidth, kbit/s. */
  kbps: number;
  /** Base one-way delay, ms. */
  delayMs: number;
  /** Uniform jitter added to each packet's delay, ms (0..jitterMs). */
  jitterMs: number;
  /** Average loss rate 0..1 (Gilbert-Elliott, see `burstiness`). */
  loss: number;
  /** 0 = independent losses; towards 1 = losses come in bursts of increasing length. */
  burstiness?: number;
  /** Packets queued beyond this many ms of link time are dropped (tail drop). */
  queueMs?: number;
  /** Seed of the link's random loss and jitter (default 1): the same seed, the same losses. */
  seed?: number;
}

/**
 * A packet that crossed the link, with when it was sent and when it arrived (ms).
 *
 * @example
 * const arrived: Delivery<Uint8Array>[] = link.receive(now);
 * for (const d of arrived) console.log(d.arrivesAt - d.sentAt, 'ms one way');
 */
export interface Delivery<T> {
  packet: T;
  sentAt: number;
  arrivesAt: number;
  /** The bottleneck's time to carry this packet (its size over the link's rate when sent), ms: part of its transit. */
  transmitMs: number;
}

/**
 * The network between the live session's encoder and decoder (see the top of this file).
 *
 * @example
 * const link = new SimulatedLink<Uint8Array>({ kbps: 8, delayMs: 40, jitterMs: 10, loss: 0.05 });
 * link.send(packet, 0);              // false when the link dropped it
 * const arrived = link.receive(100); // what has arrived 100 ms later
 */
export class SimulatedLink<T extends { byteLength: number }> {
  private config: Required<LinkConfig>;
  private readonly random: () => number;
  /** When the link finishes transmitting what is already queued. */
  private busyUntil = 0;
  private inFlight: Delivery<T>[] = [];
  private bad = false;
  /** Packets offered to the link so far. */
  sent = 0;
  /** Packets lost (random loss or a full queue) so far. */
  dropped = 0;

  constructor(config: LinkConfig) {
    this.config = { burstiness: 0, queueMs: 1000, seed: 1, ...config };
    this.random = rng(this.config.seed);
  }

  /** Changes bandwidth/delay/loss on the fly (the demo's sliders). */
  set(config: Partial<LinkConfig>): void {
    this.config = { ...this.config, ...config };
  }

  get settings(): Readonly<Required<LinkConfig>> {
    return this.config;
  }

  private lost(): boolean {
    const { loss, burstiness } = this.config;
    if (loss <= 0) return false;
    if (burstiness <= 0) return this.random() < loss;
    // Gilbert-Elliott with drop probability 0 in "good" and 1 in "bad": the stationary share
    // of "bad" equals `loss`, and the mean burst length is 1 / (1 - burstiness).
    const leaveBad = 1 - burstiness;
    const enterBad = (loss * leaveBad) / Math.max(1e-9, 1 - loss);
    this.bad = this.bad ? this.random() >= leaveBad : this.random() < enterBad;
    return this.bad;
  }

  /** The bottleneck's time to carry `bytes` at the link's rate now, ms. */
  transmitMs(bytes: number): number {
    return (bytes * 8) / this.config.kbps; // kbit/s == bit/ms
  }

  /** Offers a packet to the link at time `now`. Returns false if it was dropped. */
  send(packet: T, now: number): boolean {
    this.sent++;
    const txMs = this.transmitMs(packet.byteLength);
    const start = Math.max(now, this.busyUntil);
    if (start - now > this.config.queueMs || this.lost()) {
      this.dropped++;
      return false;
    }
    this.busyUntil = start + txMs;
    const arrivesAt = this.busyUntil + this.config.delayMs + this.random() * this.config.jitterMs;
    this.inFlight.push({ packet, sentAt: now, arrivesAt, transmitMs: txMs });
    return true;
  }

  /** Packets that have arrived by `now`, in arrival order. */
  receive(now: number): Delivery<T>[] {
    const arrived = this.inFlight.filter((d) => d.arrivesAt <= now).sort((a, b) => a.arrivesAt - b.arrivesAt);
    this.inFlight = this.inFlight.filter((d) => d.arrivesAt > now);
    return arrived;
  }
}
