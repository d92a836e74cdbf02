/**
 * The adaptive network jitter buffer, alone and behind the seeded SimulatedLink the live session
 * uses (sdk/live/jitter-sim.ts drives both in the session's order). The fixed-delay buffer
 * (`adaptive: false`, the behaviour before it adapted) is the peer on the same link and seed.
 */
import { describe, expect, it } from 'vitest';
import { JitterBuffer } from './jitter-buffer.ts';
import { simulateJitter } from './jitter-sim.ts';

const FRAME = 20;
/** 40 ms base delay, 0..120 ms uniform jitter: far more than the fixed 3-frame buffer covers. */
const JITTERY = { kbps: 64, delayMs: 40, jitterMs: 120, loss: 0 };
const STEADY = { ...JITTERY, jitterMs: 0 };
const FIXED = { startFrames: 3, adaptive: false };
const ADAPTIVE = { startFrames: 3 };

describe('JitterBuffer (adaptive)', () => {
  it('grows at once to cover a late packet, holding playout for the added turns', () => {
    const jb = new JitterBuffer<string>({ startFrames: 1 });
    // Frames sent every 20 ms; frame 0 takes 10 ms, so the delay starts at 1 frame (20 ms).
    jb.push(0, 'a', 10);
    expect(jb.popDue(20)).toEqual([{ frame: 0, packet: 'a' }]);
    jb.push(1, 'b', 30);
    expect(jb.popDue(40)).toEqual([{ frame: 1, packet: 'b' }]);
    // Frame 2 is due at 60 ms but arrives at 95 ms (transit 55 ms): late, and the delay grows to 3 frames.
    expect(jb.popDue(60)).toEqual([{ frame: 2, packet: null, reason: 'late' }]);
    jb.push(2, 'c', 95);
    expect(jb.stats).toMatchObject({ late: 1, grew: 1, delayMs: 60 });
    jb.push(3, 'd', 75);
    // Frame 3's turn moved from 80 to 120 ms: the turns at 80 and 100 hold.
    expect(jb.popDue(80)).toEqual([]);
    expect(jb.popDue(100)).toEqual([]);
    expect(jb.popDue(120)).toEqual([{ frame: 3, packet: 'd' }]);
  });

  it('shrinks one frame per stableFrames quiet turns, down to the base transit, releasing two frames in one turn', () => {
    const jb = new JitterBuffer<number>({ startFrames: 4, stableFrames: 5, windowPackets: 3 });
    const turns: number[][] = [];
    for (let i = 0; i < 40; i++) {
      jb.push(i, i, i * FRAME + 15); // a steady 15 ms transit: 1 frame of delay is enough
      turns.push(jb.popDue(i * FRAME).map((s) => s.frame));
    }
    // Pre-buffer: frame 0 plays at 80 ms (4 frames). Then 3 shrinks, each a turn with two frames.
    expect(turns.slice(0, 4).flat()).toEqual([]);
    expect(turns.filter((t) => t.length === 2)).toHaveLength(3);
    expect(turns.flat()).toEqual([...Array(turns.flat().length).keys()]); // every frame once, in order
    expect(jb.stats).toMatchObject({ targetFrames: 1, delayMs: 20, shrank: 3, late: 0 });
  });

  it('stays within maxFrames beyond the base transit however late a packet is', () => {
    const jb = new JitterBuffer<number>({ startFrames: 1, maxFrames: 5 });
    jb.push(0, 0, 5);
    jb.popDue(20);
    jb.popDue(40); // frame 1's turn passes
    jb.push(1, 1, 1000); // 980 ms late
    expect(jb.stats.targetFrames).toBe(5);
    expect(jb.stats.delayMs).toBe(100);
  });

  it('setTarget sets the buffering beyond the base transit now (the demo\'s input); before the first packet, the pre-buffer', () => {
    const jb = new JitterBuffer<number>({ startFrames: 1, adaptive: false });
    jb.setTarget(2); // before any packet: the pre-buffer
    jb.push(0, 0, 15);
    expect(jb.popDue(20)).toEqual([]);
    expect(jb.popDue(40)).toEqual([{ frame: 0, packet: 0 }]);
    jb.push(1, 1, 35);
    jb.setTarget(4); // two frames more: the next two turns hold
    expect(jb.stats).toMatchObject({ targetFrames: 4, delayMs: 80 });
    expect(jb.popDue(60)).toEqual([]);
    expect(jb.popDue(80)).toEqual([]);
    expect(jb.popDue(100)).toEqual([{ frame: 1, packet: 1 }]);
  });

  it('with no times given, one pop() is one 20 ms frame (the fixed buffer of earlier versions, by number)', () => {
    const jb = new JitterBuffer<number>(1);
    jb.push(65535, 1);
    expect(jb.pop()).toEqual({ frame: 65535, packet: 1 });
    jb.push(0, 2);
    expect(jb.pop()).toEqual({ frame: 65536, packet: 2 });
  });

  it('RFC 3550 jitter: zero on a steady link, about a third of the spread on uniform jitter', () => {
    const steady = simulateJitter({ link: { ...STEADY, seed: 1 }, buffer: ADAPTIVE, frames: 500 });
    const jittery = simulateJitter({ link: { ...JITTERY, seed: 1 }, buffer: ADAPTIVE, frames: 2000 });
    expect(steady.stats.jitterMs).toBeLessThan(1e-6);
    // E|X - Y| for two independent X, Y uniform on [0, 120] is 40 ms; J follows consecutive
    // arrivals (which the link's reordering makes less independent) with a 1/16 moving average.
    expect(jittery.stats.jitterMs).toBeGreaterThan(25);
    expect(jittery.stats.jitterMs).toBeLessThan(70);
  });
});

describe('JitterBuffer behind the simulated link, against the fixed buffer on the same link', () => {
  it('on a jittery link, late drops fall from a fifth to a half of the packets to a few (seeds 1-3)', () => {
    for (const seed of [1, 2, 3]) {
      const link = { ...JITTERY, seed };
      const fixed = simulateJitter({ link, buffer: FIXED, frames: 3000 });
      const adaptive = simulateJitter({ link, buffer: ADAPTIVE, frames: 3000 });
      expect(fixed.late, `seed ${seed}`).toBeGreaterThan(500);
      expect(adaptive.late, `seed ${seed}`).toBeLessThan(fixed.late / 20);
      // What it costs: the delay that covers the jitter (base ~42 ms + up to 120 ms), not more.
      expect(adaptive.delayMs.lastMean).toBeGreaterThanOrEqual(160);
      expect(adaptive.delayMs.lastMean).toBeLessThanOrEqual(200);
      for (const run of [fixed, adaptive]) {
        expect(run.turnsPerFrame).toEqual({ min: 1, max: 1 }); // every frame exactly one turn
        expect(run.firstFrame).toBeLessThanOrEqual(1); // (frame 0 overtaken by frame 1 before playout started: 1)
        expect(run.played + run.concealed).toBe(3000 - run.firstFrame);
        // Concealed turns are the late and lost packets (less those of frames before the first turn),
        // plus any still on the wire when the run ended.
        expect(run.concealed + run.firstFrame).toBeGreaterThanOrEqual(run.late + run.lost);
        expect(run.concealed - run.late - run.lost).toBeLessThanOrEqual(8);
      }
    }
  });

  it('when the jitter stops, the delay shrinks back to the minimum the base transit allows', () => {
    const link = { ...JITTERY, seed: 4 };
    const run = simulateJitter({ link, buffer: ADAPTIVE, frames: 2500, phases: [{ atFrame: 1000, link: { jitterMs: 0 } }] });
    const steadyOnly = simulateJitter({ link: { ...STEADY, seed: 4 }, buffer: ADAPTIVE, frames: 1000 });
    expect(Math.max(...run.targetTrace.slice(0, 1000))).toBeGreaterThanOrEqual(6);
    expect(run.stats.targetFrames).toBe(1);
    // Base transit ~42 ms (transmit + 40 ms): 3 frames is the least delay that plays it.
    expect(run.delayMs.lastMean).toBe(60);
    expect(steadyOnly.delayMs.lastMean).toBe(60);
    // The fixed buffer keeps whatever its start gave it.
    const fixed = simulateJitter({ link: { ...STEADY, seed: 4 }, buffer: FIXED, frames: 1000 });
    expect(fixed.delayMs.lastMean).toBe(100);
    expect(run.late).toBeLessThan(20);
  });

  it('loss alone does not grow the delay', () => {
    const run = simulateJitter({ link: { ...STEADY, loss: 0.2, burstiness: 0.7, seed: 5 }, buffer: ADAPTIVE, frames: 2000 });
    expect(run.lost).toBeGreaterThan(200);
    expect(run.late).toBe(0);
    expect(run.stats.grew).toBe(0);
    expect(run.delayMs.lastMean).toBe(60);
  });

  // The live demo's link: 16 kbps, 40 ms, 0-10 ms of jitter. Its bottleneck takes 13 ms to carry
  // a 9.2 kbps packet (26 bytes) and 5.5 ms for a 3.2 kbps one (11 bytes), so a switch up makes
  // every packet 7.5 ms slower: before the buffer sized its delay for the largest packet, a
  // 3.2 kbps spell shrank it to 60 ms, and the first 9.2 kbps packets (61-63 ms) were late.
  const DEMO_LINK = { kbps: 16, delayMs: 40, jitterMs: 10, loss: 0 };
  /** 6 -> 3.2 -> 9.2 -> 4.8 kbps every 3 s (the soak's cycle): packets of 18, 11, 26, 15 bytes. */
  const switches = (frames: number) => Array.from({ length: Math.ceil(frames / 150) }, (_, k) => ({ atFrame: k * 150, packetBytes: [18, 11, 26, 15][k % 4]! }));

  it('a bitrate switch is not jitter: no late packet and no growth from packets of another size (seeds 1-3)', () => {
    for (const seed of [1, 2, 3]) {
      const run = simulateJitter({ link: { ...DEMO_LINK, seed }, buffer: ADAPTIVE, frames: 3000, phases: switches(3000) });
      expect(run.late, `seed ${seed}`).toBe(0);
      expect(run.stats.grew, `seed ${seed}`).toBe(0);
      // The delay covers the largest packet's transit (40 + 13 + 0..10 ms) and stays there.
      expect(new Set(run.targetTrace.slice(500)), `seed ${seed}`).toEqual(new Set([run.stats.targetFrames]));
      expect(run.delayMs.lastMean, `seed ${seed}`).toBe(80);
    }
  });

  it('with bitrate switches, the network\'s own lateness still counts and still grows the delay', () => {
    const run = simulateJitter({ link: { ...DEMO_LINK, seed: 1 }, buffer: ADAPTIVE, frames: 3000, phases: [...switches(3000), { atFrame: 1000, link: { jitterMs: 60 } }] });
    expect(run.late).toBeGreaterThan(0);
    expect(run.stats.grew).toBeGreaterThan(0);
    expect(Math.max(...run.targetTrace.slice(1000))).toBeGreaterThan(Math.max(...run.targetTrace.slice(500, 1000)));
  });
});
