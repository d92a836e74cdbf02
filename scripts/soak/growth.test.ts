import { describe, expect, it } from 'vitest';
import { GPU_BUFFER_FLOOR, growthVerdict, MIB } from './growth.ts';

describe('growthVerdict', () => {
  const xs = Array.from({ length: 20 }, (_, i) => i * 50);
  // A fixed pseudo-random wobble of +-2 MiB (GC timing).
  const wobble = xs.map((_, i) => ((i * 7919) % 13) / 12 - 0.5).map((u) => 4 * MIB * u);

  it('calls a heap that wobbles around a level flat', () => {
    const v = growthVerdict(xs, wobble.map((w) => 100 * MIB + w));
    expect(v.flat).toBe(true);
    expect(Math.abs(v.growth)).toBeLessThan(v.noise);
  });

  it('calls 40 KiB a step over 1000 steps growth, even under the same wobble', () => {
    const v = growthVerdict(xs, xs.map((x, i) => 100 * MIB + 40 * 1024 * x + wobble[i]!));
    expect(v.flat).toBe(false);
    expect(Math.abs(v.slope / (40 * 1024) - 1)).toBeLessThan(0.1);
    expect(v.growth).toBeGreaterThan(v.bound);
  });

  it('has a 1 MiB floor for step-wise allocators and ignores unmeasured points', () => {
    const v = growthVerdict([0, 1, 2, 3, 4], [16 * MIB, 16 * MIB, NaN, 16 * MIB, 16 * MIB + 512 * 1024]);
    expect(v.points).toBe(4);
    expect(v.bound).toBe(MIB);
    expect(v.flat).toBe(true);
  });

  it('judges GPU buffer counts on their own floor: one buffer kept per abort is growth, a few pooled ones are not', () => {
    const generations = Array.from({ length: 12 }, (_, i) => 20 * (i + 1));
    // A steady pool of 180 buffers that moves by one or two as sizes come and go.
    const steady = generations.map((_, i) => 180 + (i % 3 === 0 ? 2 : i % 2));
    expect(growthVerdict(generations, steady, GPU_BUFFER_FLOOR)).toMatchObject({ flat: true, bound: 4 });
    // One buffer left behind by every aborted stream (a quarter of the generations).
    const leaking = generations.map((g, i) => steady[i]! + g / 4);
    expect(growthVerdict(generations, leaking, GPU_BUFFER_FLOOR).flat).toBe(false);
    // On the heaps' 1 MiB floor the same leak would pass unseen.
    expect(growthVerdict(generations, leaking).flat).toBe(true);
  });
});
