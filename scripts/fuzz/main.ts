/**
 * `npm run test:fuzz -- [--json] [--cases N] [--seed S] [--target a,b] [--case I] [--timeout-ms T]`
 *
 * Fuzzes every parser and loader (scripts/fuzz/targets/) with seeded, replayable cases: prints a
 * table per target (or, with --json, one line per target and the summary as the last stdout line)
 * and exits 1 when any case was an untyped error, an invalid result, a hang, a crash or an
 * over-allocation. `--target X --case I` replays one case and prints its finding.
 */
import { runFuzz, type FuzzSummary } from './runner.ts';
import { TARGET_NAMES } from './targets/index.ts';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intArg(name: string, fallback: number): number {
  const raw = arg(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${raw}`);
  return n;
}

const json = process.argv.includes('--json');
const targets = arg('target')?.split(',') ?? [...TARGET_NAMES];
const only = arg('case') === undefined ? undefined : intArg('case', 0);
const cases = intArg('cases', 10_000);
const seed = intArg('seed', 1);

const summary: FuzzSummary = await runFuzz({
  seed,
  cases,
  targets,
  timeoutMs: intArg('timeout-ms', 5000),
  ...(only !== undefined ? { only } : {}),
  onResult: (r) => {
    if (only !== undefined) console.log(JSON.stringify(r));
  },
});

for (const [name, s] of Object.entries(summary.targets)) {
  if (json) {
    console.log(JSON.stringify({ target: name, ...s }));
    continue;
  }
  const outcomes = Object.entries(s.outcomes)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    `${name.padEnd(20)} ${String(s.cases).padStart(6)} cases  untyped ${s.untyped}  invalid ${s.invalid}  hangs ${s.hangs}  crashes ${s.crashes}  over-alloc ${s.over_allocations}  slowest ${s.slowest_ms} ms (#${s.slowest_case})  alloc x${s.max_alloc_ratio}  ${(s.wall_ms / 1000).toFixed(1)} s`,
  );
  console.log(`${''.padEnd(20)} ${outcomes}`);
  for (const f of s.findings) console.log(`${''.padEnd(20)} finding #${f.index} [${f.kind}] ${f.outcome}: ${f.message}`);
}
console.log(
  json ? JSON.stringify(summary) : `total ${summary.totals.cases} cases in ${summary.wall_s} s: ${JSON.stringify(summary.totals)}`,
);
const t = summary.totals;
process.exitCode = t.untyped + t.invalid + t.hangs + t.crashes + t.over_allocations > 0 ? 1 : 0;
