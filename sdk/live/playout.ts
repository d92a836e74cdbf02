/**
 * The playback side of the live pipeline, on the audio clock: decoded frames queue here (inside
 * the playback AudioWorklet) and leave one every 20 ms of audio, whatever the main thread and
 * the worker are doing. This is the jitter buffer for everything that is not the simulated
 * network (main-thread pauses, worker queues, GC, a busy machine), and it adapts:
 *
 * - it starts once `startFrames` frames are queued (pre-buffering is not an underrun);
 * - an empty queue when a frame is due is an underrun: the slot is concealed (the last frame
 *   played back and forth, fading out over two frames, so the wave stays continuous) instead of
 *   stalling, and the target depth grows by one frame, and when the run of concealed slots ends,
 *   to at least its length plus one (up to `maxFrames`): a stall of that length, seen once, is
 *   likely to come again (a GC, a busy neighbour), and the buffer then rides it out;
 * - latency is won back: the smallest depth seen at frame boundaries is watched over
 *   `windowFrames` frames, and whatever it stayed above the target is dropped at once (oldest
 *   first, crossfaded), so a burst after a stall does not stay as extra delay for good;
 * - after `stableFrames` frames without an underrun the target shrinks by one (down to
 *   `minFrames`), and the next window drops the frame that makes up the difference;
 * - the queue is bounded (`4 x maxFrames`): beyond it the oldest frame is dropped on arrival.
 *
 * Pure (no DOM, no worklet globals): the worklet wires it to its port, Node tests drive it.
 *
 * @example
 * const playout = new PlayoutBuffer({ startFrames: 2 });
 * port.onmessage = (ev) => playout.push(ev.data.id, ev.data.pcm);
 * // in process(): the frames that started in this render quantum, for latency reports
 * for (const started of playout.render(outputs[0][0])) report(started.id, started.offset);
 */

/**
 * How a {@link PlayoutBuffer} sizes itself (frames of 20 ms).
 *
 * @example
 * const options: PlayoutOptions = { startFrames: 2, minFrames: 2, maxFrames: 12, stableFrames: 100, windowFrames: 25 };
 */
export interface PlayoutOptions {
  /** Samples per frame (320: 20 ms at 16 kHz). */
  frameSamples?: number;
  /** Queue depth at which playback starts, and the first target (default 2). */
  startFrames?: number;
  /** The target never shrinks below this (default 2: one frame of slack beyond the one due). */
  minFrames?: number;
  /** The target never grows beyond this (default 12: 240 ms). */
  maxFrames?: number;
  /** Frames without an underrun before the target shrinks by one (default 100: 2 s). */
  stableFrames?: number;
  /** Frames over which the smallest queue depth is watched before trimming to the target (default 25). */
  windowFrames?: number;
}

/**
 * What a {@link PlayoutBuffer} has done so far; `played + concealed` is every frame slot since
 * playback started.
 *
 * @example
 * const s: PlayoutStats = playout.stats;
 * console.log(`${s.underruns} underruns, ${s.concealed} slots concealed, ${s.dropped} frames dropped, target ${s.targetFrames}`);
 */
export interface PlayoutStats {
  /** Frames pushed. */
  received: number;
  /** Frames played from the queue. */
  played: number;
  /** Frame slots concealed because the queue was empty when they were due. */
  concealed: number;
  /** Frames dropped to win latency back (or because the queue was full). */
  dropped: number;
  /** Times the queue ran dry (each a run of one or more concealed slots). */
  underruns: number;
  /** The depth the buffer currently aims for, frames. */
  targetFrames: number;
  /** Frames queued now. */
  depth: number;
  /** The deepest the queue has been. */
  maxDepth: number;
}

/**
 * A frame that started playing during a `render` call, at sample `offset` of the block.
 *
 * @example
 * for (const s: PlayoutStart of playout.render(out)) latencyOf(s.id, currentTime + s.offset / 16000);
 */
export interface PlayoutStart {
  id: number;
  offset: number;
}

/** Samples over which a discontinuity (a dropped frame, the end of concealment) is crossfaded. */
const CROSSFADE = 32;

/**
 * The audio-clock jitter buffer of the playback worklet (see the top of this file).
 *
 * @example
 * const playout = new PlayoutBuffer({ startFrames: 2, maxFrames: 12 });
 * playout.push(0, frame320);                                 // decoded frames, in order
 * const started = playout.render(new Float32Array(128));     // one render quantum
 * console.log(started, playout.stats.targetFrames, playout.stats.underruns);
 */
export class PlayoutBuffer {
  private readonly frameSamples: number;
  private readonly minFrames: number;
  private readonly maxFrames: number;
  private readonly stableFrames: number;
  private readonly windowFrames: number;
  private readonly capacity: number;
  private queue: { id: number; pcm: Float32Array }[] = [];
  private current: Float32Array | null = null;
  private pos = 0;
  private started = false;
  /** The stream has ended: once the queue is empty, silence (not underruns). */
  private ended = false;
  /** The last frame played from the queue: the material concealment repeats. */
  private lastReal: Float32Array | null = null;
  /** Concealed slots in the current run (0 = not concealing). */
  private concealRun = 0;
  private sinceUnderrun = 0;
  private windowMin = Infinity;
  private windowCount = 0;
  readonly stats: PlayoutStats;

  constructor(options: PlayoutOptions = {}) {
    this.frameSamples = options.frameSamples ?? 320;
    this.minFrames = Math.max(1, options.minFrames ?? 2);
    this.maxFrames = Math.max(this.minFrames, options.maxFrames ?? 12);
    this.stableFrames = options.stableFrames ?? 100;
    this.windowFrames = Math.max(1, options.windowFrames ?? 25);
    this.capacity = 4 * this.maxFrames;
    const start = Math.min(this.maxFrames, Math.max(1, options.startFrames ?? 2));
    this.stats = { received: 0, played: 0, concealed: 0, dropped: 0, underruns: 0, targetFrames: Math.max(this.minFrames, start), depth: 0, maxDepth: 0 };
  }

  /** Queues a decoded frame (its `id` comes back from `render` when it starts playing). */
  push(id: number, pcm: Float32Array): void {
    this.stats.received++;
    this.queue.push({ id, pcm });
    if (this.queue.length > this.capacity) {
      this.queue.shift(); // bounded: a consumer this far behind has lost those frames anyway
      this.stats.dropped++;
    }
    this.stats.depth = this.queue.length;
    this.stats.maxDepth = Math.max(this.stats.maxDepth, this.queue.length);
  }

  /** No more frames will come: play what is queued, then silence that counts as nothing. */
  end(): void {
    this.ended = true;
    this.started = true; // a stream shorter than the pre-buffer still plays
  }

  /** Fills `out` with the next samples; returns the frames that started in it. */
  render(out: Float32Array): PlayoutStart[] {
    const starts: PlayoutStart[] = [];
    for (let i = 0; i < out.length; i++) {
      if (!this.current) {
        const id = this.nextFrame();
        if (id === undefined) {
          out[i] = 0; // pre-buffering, or the stream has ended
          continue;
        }
        if (id !== null) starts.push({ id, offset: i });
      }
      const frame = this.current!;
      out[i] = frame[this.pos++]!;
      if (this.pos === frame.length) this.current = null;
    }
    this.stats.depth = this.queue.length;
    return starts;
  }

  /**
   * A frame boundary: picks what plays next. Returns its id, null for a concealed slot, or
   * undefined before playback has started and after the end.
   */
  private nextFrame(): number | null | undefined {
    const s = this.stats;
    if (this.ended && this.queue.length === 0) return undefined;
    if (!this.started) {
      if (this.queue.length < s.targetFrames) return undefined;
      this.started = true;
    }
    this.pos = 0;
    // Latency is won back from the depth the queue never went below over a window (its
    // minimum, not its peaks: a burst after a short pause drains by itself).
    this.windowMin = Math.min(this.windowMin, this.queue.length);
    let from: Float32Array | null = null; // what would have played next, to crossfade from
    if (++this.windowCount >= this.windowFrames) {
      const excess = this.windowMin - s.targetFrames;
      if (excess > 0) {
        from = this.queue[0]!.pcm; // the continuation of what was playing
        this.queue.splice(0, excess);
        s.dropped += excess;
      }
      this.windowMin = Infinity;
      this.windowCount = 0;
    }
    if (++this.sinceUnderrun >= this.stableFrames && s.targetFrames > this.minFrames) {
      s.targetFrames--;
      this.sinceUnderrun = 0;
    }
    const next = this.queue.shift();
    if (!next) {
      if (this.concealRun === 0) {
        s.underruns++;
        s.targetFrames = Math.min(this.maxFrames, s.targetFrames + 1);
        // A fresh window: the minimum of the run-up to the underrun says nothing about after it.
        this.windowMin = Infinity;
        this.windowCount = 0;
      }
      this.sinceUnderrun = 0;
      s.concealed++;
      this.current = this.concealment(this.concealRun++);
      return null;
    }
    if (this.concealRun > 0) {
      from = this.concealment(this.concealRun); // where concealment was heading
      s.targetFrames = Math.max(s.targetFrames, Math.min(this.maxFrames, this.concealRun + 1));
    }
    this.concealRun = 0;
    s.played++;
    this.lastReal = next.pcm;
    this.current = from ? crossfade(from, next.pcm) : next.pcm;
    return next.id;
  }

  /**
   * Slot `n` of a run of concealed slots: the last real frame reversed, then forward, then
   * reversed (each turn starts on the sample the previous one ended with, so the wave has no
   * step), fading from full to silence over the first two slots.
   */
  private concealment(n: number): Float32Array {
    const N = this.frameSamples;
    const out = new Float32Array(N);
    const src = this.lastReal;
    if (!src || n >= 2) return out;
    for (let i = 0; i < N; i++) {
      const sample = n % 2 === 0 ? src[N - 1 - i]! : src[i]!;
      const gain = 1 - (n + (i + 1) / N) / 2;
      out[i] = sample * gain;
    }
    return out;
  }
}

/** `to` with its first samples faded in from `from` (the signal it replaces), so no step is heard. */
function crossfade(from: Float32Array, to: Float32Array): Float32Array {
  const out = to.slice();
  const n = Math.min(CROSSFADE, from.length, to.length);
  for (let i = 0; i < n; i++) {
    const w = (i + 1) / (n + 1);
    out[i] = from[i]! * (1 - w) + to[i]! * w;
  }
  return out;
}
