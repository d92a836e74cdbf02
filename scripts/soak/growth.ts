/**
 * Is a memory series growing, or is it noise? A least-squares line through (x, bytes): the
 * growth is its slope over the span of x; the noise is 3 standard deviations of the points
 * around the line. The series is flat when the growth is within the noise or within a floor:
 * for heaps (the default) max(1 MiB, 1% of the first value), since allocators grow in chunks and
 * GC timing moves heaps by some; for counts (GPU buffers) a floor in their own unit.
 */

export interface GrowthVerdict {
  /** First and last value (bytes, or a count). */
  start: number;
  end: number;
  /** Least-squares slope, per unit of x (per generation, per second, per frame). */
  slope: number;
  /** slope x (last x - first x): what the fit says the run added. */
  growth: number;
  /** 3 sigma of the residuals around the fit. */
  noise: number;
  /** max(noise, floor): growth beyond this is growth. */
  bound: number;
  flat: boolean;
  points: number;
}

export const MIB = 1024 * 1024;

/** Growth within max(absolute, relative x |first value|) is never called growth. */
export interface GrowthFloor {
  absolute: number;
  relative: number;
}

/** Heaps in bytes: 1 MiB or 1% of the start. */
export const HEAP_FLOOR: GrowthFloor = { absolute: MIB, relative: 0.01 };

/**
 * GPU buffers, a count: onnxruntime's WebGPU pool creates buffers as sizes first come up and
 * keeps them, and the uniform buffers of a run in flight come and go, so a few either way are
 * not a leak; a buffer kept per generation or per frame is hundreds over a run.
 */
export const GPU_BUFFER_FLOOR: GrowthFloor = { absolute: 4, relative: 0 };

/** `xs` and `ys` of equal length, at least two points; NaN values (unmeasured) are left out. */
export function growthVerdict(xs: readonly number[], ys: readonly number[], floor: GrowthFloor = HEAP_FLOOR): GrowthVerdict {
  const points = xs.map((x, i) => [x, ys[i]!] as const).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const n = points.length;
  if (n < 2) return { start: points[0]?.[1] ?? NaN, end: points[0]?.[1] ?? NaN, slope: 0, growth: 0, noise: 0, bound: 0, flat: true, points: n };
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) * (x - mx);
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  const residual = points.reduce((a, [x, y]) => a + (y - (intercept + slope * x)) ** 2, 0);
  const noise = 3 * Math.sqrt(residual / Math.max(1, n - 2));
  const growth = slope * (points[n - 1]![0] - points[0]![0]);
  const start = points[0]![1];
  const bound = Math.max(noise, floor.absolute, floor.relative * Math.abs(start));
  return { start, end: points[n - 1]![1], slope, growth, noise, bound, flat: growth <= bound, points: n };
}
