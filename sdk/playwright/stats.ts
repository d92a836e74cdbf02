/**
 * Whittle's numbers in the Playwright report: tokens/s, time to first token, the codec's real-time
 * factor, attached to the test as JSON (`whittle-stats`) and summarised as an annotation, so a run
 * on each device of a matrix leaves its measurements next to its pass or fail.
 *
 * @example
 * const { stats } = await page.evaluate(() => window.result); // the app's GenerateStats
 * await recordStats(statsFromGenerate(stats));
 */
import { test, type TestInfo } from '@playwright/test';
import type { GenerateStats } from '../../core/text-types.ts';
import { WhittleError } from '../../core/errors.ts';

/**
 * What `recordStats` reports; every field optional, extra numbers welcome.
 *
 * @example
 * const stats: WhittleStats = { tokensPerSecond: 120.5, timeToFirstTokenMs: 38, codecRealTimeFactor: 0.08 };
 */
export interface WhittleStats {
  /** Decode speed: generated tokens per second after the first. */
  tokensPerSecond?: number;
  timeToFirstTokenMs?: number;
  /** Codec processing time / audio duration (below 1 is faster than real time). */
  codecRealTimeFactor?: number;
  [name: string]: number | undefined;
}

/**
 * The report's numbers from a `generate()` run's stats (`ev.stats` of its `done` event).
 *
 * @example
 * statsFromGenerate(done.stats); // { tokensPerSecond: 310.2, timeToFirstTokenMs: 12.5, generatedTokens: 20 }
 */
export function statsFromGenerate(
  stats: Pick<GenerateStats, 'decodeTokensPerSecond' | 'timeToFirstTokenMs' | 'generatedTokens'>,
): WhittleStats {
  return {
    tokensPerSecond: stats.decodeTokensPerSecond,
    timeToFirstTokenMs: stats.timeToFirstTokenMs,
    generatedTokens: stats.generatedTokens,
  };
}

/**
 * The codec's real-time factor: wall time over audio time.
 *
 * @example
 * codecRealTimeFactor({ samples: 51_200, sampleRate: 16_000, wallMs: 250 }); // 0.078
 */
export function codecRealTimeFactor({ samples, sampleRate, wallMs }: { samples: number; sampleRate: number; wallMs: number }): number {
  if (!(samples > 0) || !(sampleRate > 0) || !(wallMs >= 0))
    throw new WhittleError(
      'INVALID_ARGUMENT',
      `codecRealTimeFactor: need samples > 0, sampleRate > 0 and wallMs >= 0, got ${samples}, ${sampleRate}, ${wallMs}`,
    );
  return wallMs / 1000 / (samples / sampleRate);
}

/**
 * Attaches `stats` to the running test (or `testInfo`) as `whittle-stats` JSON and a one-line
 * annotation. A value that is not a finite number is a typed error, not a silent gap.
 *
 * @example
 * await recordStats({ tokensPerSecond: 120.5, timeToFirstTokenMs: 38 });
 */
export async function recordStats(stats: WhittleStats, testInfo: TestInfo = test.info()): Promise<void> {
  const entries = Object.entries(stats).filter((e): e is [string, number] => e[1] !== undefined);
  const bad = entries.filter(([, v]) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad.length > 0)
    throw new WhittleError(
      'INVALID_ARGUMENT',
      `recordStats: ${bad.map(([k, v]) => `${k} = ${String(v)}`).join(', ')} is not a finite number`,
    );
  const summary = entries.map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toFixed(3)}`).join(', ');
  testInfo.annotations.push({ type: 'whittle-stats', description: summary });
  await testInfo.attach('whittle-stats', { body: JSON.stringify(Object.fromEntries(entries), null, 2), contentType: 'application/json' });
}
