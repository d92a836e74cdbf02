/**
 * Small helpers over core/random.ts's seeded generator, and the per-case seed: every case gets its
 * own generator from (run seed, target, case index), so one case replays without the ones before.
 */
import { createRng, type Rng } from '../../core/random.ts';

export type { Rng } from '../../core/random.ts';

/** FNV-1a over the target name, mixed with the run seed and case index (independent streams). */
export function caseRng(seed: number, target: string, caseIndex: number): Rng {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < target.length; i++) h = Math.imul(h ^ target.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ caseIndex, 0x01000193) ^ Math.imul(caseIndex >>> 16, 0x9e3779b1);
  return createRng(h >>> 0);
}

/** Integer in [lo, hi] (inclusive). */
export const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

export const chance = (rng: Rng, p: number): boolean => rng() < p;

export function pick<T>(rng: Rng, xs: readonly T[]): T {
  if (xs.length === 0) throw new Error('pick from an empty list');
  return xs[Math.floor(rng() * xs.length)]!;
}

/** Mostly small sizes, sometimes large: the distribution that finds both off-by-ones and blow-ups. */
export function size(rng: Rng, max: number): number {
  const r = rng();
  if (r < 0.6) return int(rng, 0, Math.min(max, 16));
  if (r < 0.9) return int(rng, 0, Math.min(max, 1024));
  return int(rng, 0, max);
}
