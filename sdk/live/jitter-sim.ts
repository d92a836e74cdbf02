/**
 * The live session's network half without audio: a frame's packet every 20 ms through a
 * {@link SimulatedLink} into a {@link JitterBuffer}, in the session's order (at frame i's time,
 * first what has arrived and the turns that are due, then frame i's packet leaves). For the
 * jitter buffer's tests and `bench/jitter-sim.ts`: late drops and playout delay per buffer
 * setting, on the same seeded link.
 *
 * @example
 * const run = simulateJitter({ link: { kbps: 64, delayMs: 40, jitterMs: 120, loss: 0, seed: 1 }, buffer: { startFrames: 3 }, frames: 3000 });
 * console.log(run.late, run.delayMs.mean);
 */
import { deliver } from './deliver.ts';
import { JitterBuffer, type JitterOptions, type JitterStats } from './jitter-buffer.ts';
import { SimulatedLink, type LinkConfig } from './network.ts';

const FRAME_MS = 20;

/**
 * A simulation: the link (changed at `phases`' frames), the buffer, how many frames.
 *
 * @example
 * const setup: JitterSimulation = { link, buffer: { adaptive: false, startFrames: 3 }, frames: 1000, phases: [{ atFrame: 500, link: { jitterMs: 0 } }] };
 */
export interface JitterSimulation {
  link: LinkConfig;
  buffer: JitterOptions;
  frames: number;
  /** Link changes mid-run (the demo's sliders), and bitrate switches (the packets' size from that frame on). */
  phases?: { atFrame: number; link?: Partial<LinkConfig>; packetBytes?: number }[];
  /** Bytes per packet, header included (default 18: 6 kbps plus the 3-byte header). */
  packetBytes?: number;
}

/**
 * Where every frame went, and how long the played ones waited.
 *
 * @example
 * const { late, concealed, delayMs } = simulateJitter(setup);
 */
export interface JitterRun {
  /** Frames sent. */
  frames: number;
  /** Turns played with their packet. */
  played: number;
  /** Turns concealed (lost on the link, or late). */
  concealed: number;
  /** Packets that arrived after their turn. */
  late: number;
  /** Packets the link lost. */
  lost: number;
  /**
   * Turns given to each frame index from the first played one (every frame exactly one: the
   * session's accounting relies on it). Frames before the first turn get none: a packet that the
   * link overtook with a later one before playout started arrives after it.
   */
  turnsPerFrame: { min: number; max: number };
  /** The frame the first turn played. */
  firstFrame: number;
  /** Turn minus send time of played frames, ms: overall, and over the last 250 frames. */
  delayMs: { mean: number; p95: number; lastMean: number; last: number };
  /** The buffer's own view at the end. */
  stats: JitterStats;
  /** The buffer's target after every frame (frames of buffering beyond the base transit). */
  targetTrace: number[];
}

/** Runs `setup` (deterministic per link seed). */
export function simulateJitter(setup: JitterSimulation): JitterRun {
  const link = new SimulatedLink<Uint8Array>(setup.link);
  const jitter = new JitterBuffer<Uint8Array>(setup.buffer);
  let bytes = setup.packetBytes ?? 18;
  const phases = [...(setup.phases ?? [])].sort((a, b) => a.atFrame - b.atFrame);
  const turns = new Map<number, number>();
  const delays: { frame: number; ms: number }[] = [];
  const targetTrace: number[] = [];
  let played = 0;
  let concealed = 0;
  let lost = 0;
  const turn = (now: number) => {
    for (const d of link.receive(now)) deliver(jitter, link, d);
    for (const slot of jitter.popDue(now)) {
      turns.set(slot.frame, (turns.get(slot.frame) ?? 0) + 1);
      if (slot.packet) {
        played++;
        delays.push({ frame: slot.frame, ms: now - slot.frame * FRAME_MS });
      } else concealed++;
    }
  };
  for (let i = 0; i < setup.frames; i++) {
    while (phases.length > 0 && phases[0]!.atFrame <= i) {
      const phase = phases.shift()!;
      if (phase.link) link.set(phase.link);
      if (phase.packetBytes !== undefined) bytes = phase.packetBytes;
    }
    const now = i * FRAME_MS;
    turn(now);
    const packet = new Uint8Array(bytes);
    packet[1] = (i >> 8) & 0xff;
    packet[2] = i & 0xff;
    if (!link.send(packet, now)) lost++;
    targetTrace.push(jitter.stats.targetFrames);
  }
  // Drain: the network and the buffer empty (as the session's drain does).
  for (let extra = 0; (turns.size === 0 || Math.max(...turns.keys()) < setup.frames - 1) && extra < 1000; extra++) turn((setup.frames + extra) * FRAME_MS);
  const firstFrame = Math.min(...turns.keys());
  const counts = [...Array(setup.frames - firstFrame).keys()].map((i) => turns.get(firstFrame + i) ?? 0);
  const all = delays.map((d) => d.ms).sort((a, b) => a - b);
  const tail = delays.filter((d) => d.frame >= setup.frames - 250).map((d) => d.ms);
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
  return {
    frames: setup.frames,
    played,
    concealed,
    late: jitter.late,
    lost,
    turnsPerFrame: { min: Math.min(...counts), max: Math.max(...counts) },
    firstFrame,
    delayMs: {
      mean: mean(all),
      p95: all[Math.min(all.length - 1, Math.floor(0.95 * all.length))] ?? NaN,
      lastMean: mean(tail),
      last: delays.at(-1)?.ms ?? NaN,
    },
    stats: jitter.stats,
    targetTrace,
  };
}
