/**
 * `npx tsx bench/jitter-sim.ts [--frames N] [--seeds N]`: the live session's network jitter
 * buffer, adaptive against fixed (`adaptive: false`, the buffer before it adapted; both start at
 * 3 frames, the session's default) on the same seeded SimulatedLink, per link scenario: late
 * packets (each one a concealed frame) and playout delay (a frame's turn minus its send time:
 * mean over the run, and mean over its last 5 s). Deterministic: no clock, no machine load.
 * One line per scenario, then one JSON line.
 */
import { simulateJitter, type JitterRun } from '../sdk/live/jitter-sim.ts';
import type { LinkConfig } from '../sdk/live/network.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const frames = arg('frames', 3000);
const seeds = arg('seeds', 5);

const BASE: LinkConfig = { kbps: 64, delayMs: 40, jitterMs: 0, loss: 0 };
/** The soak's bitrate cycle, 6 -> 3.2 -> 9.2 -> 4.8 kbps every 3 s: packets of 18, 11, 26 and 15 bytes. */
const SWITCHES = Array.from({ length: Math.ceil(frames / 150) }, (_, k) => ({ atFrame: k * 150, packetBytes: [18, 11, 26, 15][k % 4]! }));
const SCENARIOS: { name: string; link: Partial<LinkConfig>; phases?: { atFrame: number; link?: Partial<LinkConfig>; packetBytes?: number }[] }[] = [
  { name: 'steady (40 ms, no jitter)', link: {} },
  { name: 'demo link (jitter 0-10 ms)', link: { jitterMs: 10 } },
  { name: 'jitter 0-60 ms', link: { jitterMs: 60 } },
  { name: 'jitter 0-120 ms', link: { jitterMs: 120 } },
  { name: 'jitter 0-60 ms, 5% bursty loss', link: { jitterMs: 60, loss: 0.05, burstiness: 0.7 } },
  { name: 'jitter 0-120 ms for 20 s, then none', link: { jitterMs: 120 }, phases: [{ atFrame: 1000, link: { jitterMs: 0 } }] },
  // The live demo's link (16 kbps: the bottleneck takes 5.5-13 ms per packet by bitrate) with the soak's switches.
  { name: '16 kbps, jitter 0-10 ms, bitrate cycle', link: { kbps: 16, jitterMs: 10 }, phases: SWITCHES },
  { name: '16 kbps, jitter 0-60 ms, bitrate cycle', link: { kbps: 16, jitterMs: 60 }, phases: SWITCHES },
];

interface Summary {
  late: number;
  latePercent: number;
  concealed: number;
  delayMeanMs: number;
  delayLast5sMs: number;
  finalTargetFrames: number;
}

function summarize(runs: JitterRun[]): Summary {
  const sum = (f: (r: JitterRun) => number) => runs.reduce((a, r) => a + f(r), 0);
  const mean = (f: (r: JitterRun) => number) => sum(f) / runs.length;
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    late: sum((r) => r.late),
    latePercent: round((100 * sum((r) => r.late)) / (runs.length * frames)),
    concealed: sum((r) => r.concealed),
    delayMeanMs: round(mean((r) => r.delayMs.mean)),
    delayLast5sMs: round(mean((r) => r.delayMs.lastMean)),
    finalTargetFrames: round(mean((r) => r.stats.targetFrames)),
  };
}

const results = SCENARIOS.map((s) => {
  const run = (adaptive: boolean) =>
    Array.from({ length: seeds }, (_, k) =>
      simulateJitter({
        link: { ...BASE, ...s.link, seed: k + 1 },
        buffer: { startFrames: 3, adaptive },
        frames,
        ...(s.phases ? { phases: s.phases } : {}),
      }),
    );
  const fixed = summarize(run(false));
  const adaptive = summarize(run(true));
  console.log(
    `${s.name.padEnd(38)} late ${String(fixed.late).padStart(5)} -> ${String(adaptive.late).padStart(4)}   ` +
      `delay mean ${fixed.delayMeanMs} -> ${adaptive.delayMeanMs} ms, last 5 s ${fixed.delayLast5sMs} -> ${adaptive.delayLast5sMs} ms`,
  );
  return { scenario: s.name, fixed, adaptive };
});
console.log(JSON.stringify({ frames, seeds, startFrames: 3, results }));
