import { describe, expect, it } from 'vitest';
import { growthVerdict, MIB } from './growth.ts';

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
});
