import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { PlayoutBuffer, type PlayoutOptions } from './playout.ts';

const N = 320;
const BLOCK = 128; // an AudioWorklet render quantum

/** Frame k of a continuous 200 Hz sine at 16 kHz (so any step in the output is the buffer's doing). */
function sineFrame(k: number): Float32Array {
  const f = new Float32Array(N);
  for (let i = 0; i < N; i++) f[i] = 0.5 * Math.sin((2 * Math.PI * 200 * (k * N + i)) / 16000);
  return f;
}

/**
 * Drives a PlayoutBuffer on a simulated audio clock: frame k arrives at sample time `arrival(k)`
 * (its capture time is k x 320), and the buffer renders 128-sample blocks until every frame has
 * been played or dropped (so the end of the stream is not an underrun). Returns when each frame
 * started playing and the whole output.
 */
function simulate(frames: number, arrival: (k: number) => number, options: PlayoutOptions = {}) {
  const renderSamples = Math.ceil((Math.max(...Array.from({ length: frames }, (_, k) => arrival(k))) + 60 * N) / BLOCK) * BLOCK;
  const playout = new PlayoutBuffer(options);
  const order = Array.from({ length: frames }, (_, k) => k).sort((a, b) => arrival(a) - arrival(b) || a - b);
  const startedAt = new Map<number, number>();
  const startOrder: number[] = [];
  const out = new Float32Array(renderSamples);
  const targets: number[] = [];
  let next = 0;
  let end = renderSamples;
  for (let t = 0; t < end; t += BLOCK) {
    while (next < order.length && arrival(order[next]!) <= t) {
      const k = order[next++]!;
      playout.push(k, sineFrame(k));
    }
    const block = out.subarray(t, t + BLOCK);
    for (const s of playout.render(block)) {
      startedAt.set(s.id, t + s.offset);
      startOrder.push(s.id);
    }
    targets.push(playout.stats.targetFrames);
    if (end === renderSamples && playout.stats.played + playout.stats.dropped === frames) end = t + BLOCK;
  }
  const latency = (k: number) => (startedAt.has(k) ? (startedAt.get(k)! - k * N) / 16 : null); // ms after capture
  return { playout, startedAt, startOrder, out: out.subarray(0, end), latency, targets };
}

/** The largest sample-to-sample step of `x` from `from` on (a click shows up as a large one). */
function maxStep(x: Float32Array, from = 1): number {
  let m = 0;
  for (let i = Math.max(1, from); i < x.length; i++) m = Math.max(m, Math.abs(x[i]! - x[i - 1]!));
  return m;
}

describe('PlayoutBuffer', () => {
  it('plays a steady stream in order with a constant latency and no underrun', () => {
    const r = simulate(300, (k) => (k + 1) * N + 17);
    expect(r.playout.stats.underruns).toBe(0);
    expect(r.playout.stats.concealed).toBe(0);
    expect(r.startOrder).toEqual(Array.from({ length: 300 }, (_, k) => k));
    const lat = Array.from({ length: 300 }, (_, k) => r.latency(k)!);
    expect(Math.max(...lat) - Math.min(...lat)).toBeLessThan(BLOCK / 16 + 1e-9); // within one render quantum
  });

  it('conceals a stall instead of waiting, then wins the latency back', () => {
    // Frames 100..124 are held up 500 ms (a stalled main thread) and arrive in one burst.
    const arrival = (k: number) => (k >= 100 && k < 125 ? 126 * N : (k + 1) * N + 17);
    const r = simulate(2000, arrival);
    const s = r.playout.stats;
    expect(s.underruns).toBeGreaterThanOrEqual(1);
    expect(s.concealed).toBeGreaterThan(0);
    // Every frame is played or dropped, none twice, in capture order.
    expect(s.played + s.dropped).toBe(2000);
    expect(new Set(r.startOrder).size).toBe(r.startOrder.length);
    expect(r.startOrder).toEqual([...r.startOrder].sort((a, b) => a - b));
    // Latency went up during the stall and came back to where it was before it.
    const before = r.latency(90)!;
    const worst = Math.max(...r.startOrder.map((k) => r.latency(k)!));
    expect(worst).toBeGreaterThan(before + 100);
    expect(r.latency(1990)!).toBeLessThanOrEqual(before + 20);
    expect(s.targetFrames).toBe(2); // grown at the underrun, shrunk back once stable
    expect(Math.max(...r.targets)).toBe(12); // to the stall's length (24 slots), capped at maxFrames
    // No click: concealment and drops are crossfaded (the sine's own step is ~0.04).
    expect(maxStep(r.out, 2 * N)).toBeLessThan(0.1);
  });

  it('rides out a stall of the length it has already seen', () => {
    // Two 100 ms stalls (5 frames held up, then a burst), 50 frames apart.
    const held = (k: number) => (k >= 100 && k < 105 ? 106 * N : k >= 150 && k < 155 ? 156 * N : null);
    const r = simulate(400, (k) => held(k) ?? (k + 1) * N + 17);
    expect(r.playout.stats.underruns).toBe(1); // the first stall only
    expect(Math.max(...r.targets)).toBeGreaterThanOrEqual(5); // the run of concealed slots, plus one
    expect(r.playout.stats.played + r.playout.stats.dropped).toBe(400);
  });

  it('grows its target under jitter and shrinks it back once the stream is steady', () => {
    const random = createRng(7);
    const jitter = Array.from({ length: 400 }, () => Math.floor(random() * 4 * N)); // up to 80 ms late
    const arrival = (k: number) => (k + 1) * N + (k < 400 ? jitter[k]! : 0);
    const r = simulate(2000, arrival);
    const peak = Math.max(...r.targets.slice(0, Math.floor((400 * N) / BLOCK)));
    expect(peak).toBeGreaterThan(2);
    expect(r.playout.stats.targetFrames).toBe(2);
    expect(r.latency(1990)!).toBeLessThanOrEqual(r.latency(5)! + 20);
    expect(r.playout.stats.played + r.playout.stats.dropped).toBe(2000);
  });

  it('keeps its queue bounded when nothing is played', () => {
    const playout = new PlayoutBuffer({ maxFrames: 10 });
    for (let k = 0; k < 1000; k++) playout.push(k, sineFrame(k));
    expect(playout.stats.depth).toBe(40);
    expect(playout.stats.dropped).toBe(960);
    expect(playout.render(new Float32Array(BLOCK))[0]).toEqual({ id: 960, offset: 0 }); // the newest kept, oldest first
  });

  it('outputs silence while pre-buffering, not underruns', () => {
    const playout = new PlayoutBuffer({ startFrames: 3 });
    playout.push(0, sineFrame(0));
    playout.push(1, sineFrame(1));
    const out = new Float32Array(BLOCK).fill(1);
    expect(playout.render(out)).toEqual([]);
    expect(out.every((x) => x === 0)).toBe(true);
    expect(playout.stats.underruns).toBe(0);
    playout.push(2, sineFrame(2));
    expect(playout.render(out)).toEqual([{ id: 0, offset: 0 }]);
  });
});
