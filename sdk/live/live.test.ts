import { describe, expect, it } from 'vitest';
import { JitterBuffer } from './jitter-buffer.ts';
import { SimulatedLink } from './network.ts';

describe('SimulatedLink', () => {
  it('queues packets behind a bottleneck: sending faster than the link builds delay', () => {
    const link = new SimulatedLink<Uint8Array>({ kbps: 8, delayMs: 10, jitterMs: 0, loss: 0 });
    // 40-byte packets every 20 ms = 16 kbit/s into an 8 kbit/s link: each waits 20 ms longer.
    for (let i = 0; i < 10; i++) link.send(new Uint8Array(40), i * 20);
    const arrivals = link.receive(10_000).map((d) => d.arrivesAt - d.sentAt);
    expect(arrivals[0]).toBeCloseTo(50, 5); // 40 ms transmit + 10 ms delay
    expect(arrivals[9]! - arrivals[0]!).toBeCloseTo(9 * 20, 5);
  });
  it('loses about the configured share, in bursts when bursty', () => {
    const count = (burstiness: number) => {
      const link = new SimulatedLink<Uint8Array>({ kbps: 1000, delayMs: 0, jitterMs: 0, loss: 0.2, burstiness, seed: 3 });
      const lost: boolean[] = [];
      for (let i = 0; i < 20_000; i++) lost.push(!link.send(new Uint8Array(10), i * 20));
      const runs = lost.reduce((acc, l, i) => acc + (l && !lost[i - 1] ? 1 : 0), 0);
      return { rate: lost.filter(Boolean).length / lost.length, meanBurst: lost.filter(Boolean).length / runs };
    };
    const indep = count(0);
    const bursty = count(0.8);
    expect(indep.rate).toBeGreaterThan(0.18);
    expect(indep.rate).toBeLessThan(0.22);
    expect(bursty.rate).toBeGreaterThan(0.15);
    expect(bursty.rate).toBeLessThan(0.25);
    expect(bursty.meanBurst).toBeGreaterThan(3 * indep.meanBurst);
  });
});

describe('JitterBuffer', () => {
  it('pre-buffers, reorders, reports lost frames and drops late ones (fixed delay, one pop per 20 ms)', () => {
    const jb = new JitterBuffer<string>({ startFrames: 2, adaptive: false });
    jb.push(10, 'a');
    expect(jb.pop()).toBeNull(); // still pre-buffering
    jb.push(12, 'c');
    jb.push(11, 'b');
    expect(jb.pop()).toEqual({ frame: 10, packet: 'a' });
    expect(jb.pop()).toEqual({ frame: 11, packet: 'b' });
    expect(jb.pop()).toEqual({ frame: 12, packet: 'c' });
    jb.push(14, 'e');
    expect(jb.pop()).toEqual({ frame: 13, packet: null, reason: 'lost' });
    jb.push(13, 'late d');
    expect(jb.late).toBe(1);
    expect(jb.pop()).toEqual({ frame: 14, packet: 'e' });
    expect(jb.concealed).toBe(1);
  });
  it('unwraps 16-bit frame indices', () => {
    const jb = new JitterBuffer<number>(1);
    jb.push(65535, 1);
    expect(jb.pop()).toEqual({ frame: 65535, packet: 1 });
    jb.push(0, 2);
    expect(jb.pop()).toEqual({ frame: 65536, packet: 2 });
  });
});
