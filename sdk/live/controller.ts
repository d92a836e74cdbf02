/**
 * Bitrate controller for the live codec: delay-based AIMD with hysteresis and a memory of
 * where congestion happened.
 *
 * Every feedback interval (~250 ms) the receiver reports what arrived: throughput, loss, and
 * queueing delay (one-way delay above the smallest one seen, so clock offsets cancel). Rule:
 * - congestion = queueing delay above `congestedMs`, or loss above `lossCongestion` together
 *   with rising delay: decrease at once to min(0.8 x current, 0.9 x measured throughput),
 *   remember the rate that congested (the "ceiling") and ignore congestion for `drainMs`
 *   while the queue drains (one decrease per event, not one per report);
 * - early warning = queueing delay above `warnMs`: hold;
 * - random loss without delay (a lossy radio link, not a full queue) is not congestion: hold
 *   rather than back off (the decoder conceals lost frames);
 * - otherwise, after `stableIntervals` quiet intervals, add one step (additive increase) up to
 *   0.9 x the ceiling; at that level, probe one step further every `probeAfterMs` (20 s).
 * The memory is what keeps a steady link from a sawtooth: the rate settles under the ceiling.
 * Rates are on-the-wire (packet headers included) and map to Lyra's 0.2 kbps ladder.
 */

/**
 * One receiver report: what arrived during the last feedback interval.
 *
 * @example
 * const report: Feedback = { now: 5000, receivedKbps: 7.4, loss: 0.01, queueDelayMs: 12 };
 * controller.update(report);
 */
export interface Feedback {
  /** Time of the report, ms. */
  now: number;
  /** kbit/s that arrived during the interval (headers included). */
  receivedKbps: number;
  /** Fraction of packets lost in the interval, 0..1. */
  loss: number;
  /** Queueing delay estimate, ms. */
  queueDelayMs: number;
}

/**
 * Limits and thresholds of the {@link BitrateController} (rates in kbps, times in ms); the
 * defaults suit Lyra v2 (1.6..9.2 kbps, starting at 3.2).
 *
 * @example
 * const controller = new BitrateController({ minKbps: 3.2, maxKbps: 6, startKbps: 6 } satisfies ControllerOptions);
 */
export interface ControllerOptions {
  minKbps?: number;
  maxKbps?: number;
  startKbps?: number;
  /** On-wire overhead per second added to the codec rate (3-byte header x 50 packets/s = 1.2 kbps). */
  overheadKbps?: number;
  warnMs?: number;
  congestedMs?: number;
  lossCongestion?: number;
  stableIntervals?: number;
  probeAfterMs?: number;
  stepKbps?: number;
  /** After a decrease, how long congestion signals are ignored while the queue drains. */
  drainMs?: number;
}

/**
 * The rate the controller chose for the next interval, and why.
 *
 * @example
 * const d: Decision = controller.update(report);
 * if (d.reason === 'decrease') console.log(`congestion: down to ${d.kbps} kbps`);
 */
export interface Decision {
  kbps: number;
  reason: 'start' | 'increase' | 'hold' | 'warn' | 'decrease' | 'random-loss';
}

const LADDER_STEP = 0.2;

/**
 * Delay-based AIMD bitrate control with a memory of where congestion happened (the rules are
 * at the top of this file). Pure: time comes from the reports, so it runs on recorded traces.
 *
 * @example
 * const controller = new BitrateController({ startKbps: 6 });
 * const { kbps, reason } = controller.update({ now: 250, receivedKbps: 7.2, loss: 0, queueDelayMs: 90 });
 * encoder.setBitrate(kbps); // 'decrease': the queue is building up
 */
export class BitrateController {
  private readonly o: Required<ControllerOptions>;
  private kbps: number;
  private quiet = 0;
  private ceiling = Infinity;
  private lastCongestion = -Infinity;
  private prevDelay = 0;
  private drainUntil = -Infinity;
  /** Every decision so far, with the report time it answered. */
  readonly history: (Decision & { now: number })[] = [];

  constructor(options: ControllerOptions = {}) {
    this.o = {
      minKbps: 1.6,
      maxKbps: 9.2,
      startKbps: 3.2,
      overheadKbps: 1.2,
      warnMs: 25,
      congestedMs: 80,
      lossCongestion: 0.1,
      stableIntervals: 4,
      probeAfterMs: 20_000,
      stepKbps: 0.4,
      drainMs: 1000,
      ...options,
    };
    this.kbps = this.snap(this.o.startKbps);
  }

  /** Codec bitrate now in force (kbps, a multiple of 0.2). */
  get current(): number {
    return this.kbps;
  }

  private snap(kbps: number): number {
    const clamped = Math.min(this.o.maxKbps, Math.max(this.o.minKbps, kbps));
    return Math.round(Math.floor(clamped / LADDER_STEP + 1e-9) * LADDER_STEP * 10) / 10;
  }

  /** Takes one receiver report and returns the rate for the next interval. */
  update(fb: Feedback): Decision {
    const rising = fb.queueDelayMs > this.prevDelay + 5;
    this.prevDelay = fb.queueDelayMs;
    const draining = fb.now < this.drainUntil;
    let decision: Decision;
    const congested = fb.queueDelayMs > this.o.congestedMs || (fb.loss > this.o.lossCongestion && (rising || fb.queueDelayMs > this.o.warnMs));
    if (congested && !draining) {
      // Multiplicative decrease, then let the queue drain before judging again.
      const throughputCodec = Math.max(0, fb.receivedKbps - this.o.overheadKbps);
      this.ceiling = this.kbps;
      this.lastCongestion = fb.now;
      this.drainUntil = fb.now + this.o.drainMs;
      decision = { kbps: this.snap(Math.min(this.kbps * 0.8, throughputCodec * 0.9)), reason: 'decrease' };
      this.quiet = 0;
    } else if (congested || fb.queueDelayMs > this.o.warnMs) {
      decision = { kbps: this.kbps, reason: 'warn' };
      this.quiet = 0;
    } else if (fb.loss > 0.02) {
      decision = { kbps: this.kbps, reason: 'random-loss' };
      this.quiet = 0;
    } else if (++this.quiet >= this.o.stableIntervals) {
      this.quiet = 0;
      // Below the remembered ceiling: climb to 90% of it. At it: probe one step every probeAfterMs.
      const safe = Number.isFinite(this.ceiling) ? this.snap(this.ceiling * 0.9) : this.o.maxKbps;
      let next = this.kbps;
      if (this.kbps < safe) next = this.snap(Math.min(this.kbps + this.o.stepKbps, safe));
      else if (fb.now - this.lastCongestion >= this.o.probeAfterMs) {
        next = this.snap(this.kbps + this.o.stepKbps);
        this.lastCongestion = fb.now; // one probe step per period
        if (next > this.ceiling) this.ceiling = Infinity; // it held before: forget the old ceiling once we pass it
      }
      decision = { kbps: next, reason: next > this.kbps ? 'increase' : 'hold' };
    } else {
      decision = { kbps: this.kbps, reason: 'hold' };
    }
    this.kbps = decision.kbps;
    this.history.push({ ...decision, now: fb.now });
    return decision;
  }
}
