/**
 * Runs fuzz targets in a worker thread under a per-case time limit and aggregates the results.
 * A case that runs past the limit is a hang: the worker is terminated (a synchronous loop cannot
 * be interrupted any other way) and a fresh one resumes at the next case. A worker that dies
 * (out of memory, a native crash) is recorded as a crash of the case it was running.
 */
import { Worker } from 'node:worker_threads';
import type { CaseResult } from './case.ts';
import { TARGET_NAMES } from './targets/index.ts';
import type { WorkerJob } from './worker.ts';

export interface FuzzOptions {
  seed: number;
  cases: number;
  targets?: readonly string[];
  /** Per-case limit; past it the case is a hang (default 5000 ms: a loaded CI machine is slow). */
  timeoutMs?: number;
  /** Replay only this case index of each target. */
  only?: number;
  onResult?: (r: CaseResult) => void;
}

export interface Finding {
  index: number;
  kind: string;
  outcome: string;
  message: string;
}

export interface TargetSummary {
  cases: number;
  outcomes: Record<string, number>;
  untyped: number;
  invalid: number;
  hangs: number;
  /** Worker deaths, and cases whose generator failed (outcome 'fuzzer-error'). */
  crashes: number;
  over_allocations: number;
  slowest_ms: number;
  slowest_case: number;
  /** Largest (typed-array bytes allocated / input bytes) among cases that allocated over 64 KiB. */
  max_alloc_ratio: number;
  max_alloc_bytes: number;
  /** Wall time from this target's first result to its last (generation included). */
  wall_ms: number;
  /** Up to 10 findings with distinct messages, each replayable with --target and --case. */
  findings: Finding[];
}

export interface FuzzSummary {
  fuzz: true;
  seed: number;
  cases_per_target: number;
  timeout_ms: number;
  wall_s: number;
  totals: { cases: number; untyped: number; invalid: number; hangs: number; crashes: number; over_allocations: number };
  targets: Record<string, TargetSummary>;
}

const SMALL_ALLOC = 64 * 1024;

function emptySummary(): TargetSummary {
  return {
    cases: 0,
    outcomes: {},
    untyped: 0,
    invalid: 0,
    hangs: 0,
    crashes: 0,
    over_allocations: 0,
    slowest_ms: 0,
    slowest_case: -1,
    max_alloc_ratio: 0,
    max_alloc_bytes: 0,
    wall_ms: 0,
    findings: [],
  };
}

function add(s: TargetSummary, r: CaseResult): void {
  s.cases++;
  s.outcomes[r.outcome] = (s.outcomes[r.outcome] ?? 0) + 1;
  if (r.outcome === 'untyped') s.untyped++;
  if (r.outcome === 'invalid') s.invalid++;
  if (r.outcome === 'hang') s.hangs++;
  if (r.outcome === 'crash' || r.outcome === 'fuzzer-error') s.crashes++;
  if (r.overAllocated) s.over_allocations++;
  if (r.ms > s.slowest_ms) {
    s.slowest_ms = Math.round(r.ms * 100) / 100;
    s.slowest_case = r.index;
  }
  if (r.allocBytes > SMALL_ALLOC)
    s.max_alloc_ratio = Math.max(s.max_alloc_ratio, Math.round((r.allocBytes / Math.max(1, r.inputBytes)) * 100) / 100);
  s.max_alloc_bytes = Math.max(s.max_alloc_bytes, r.allocBytes);
  const finding = ['untyped', 'invalid', 'hang', 'crash', 'INTERNAL', 'fuzzer-error'].includes(r.outcome) || r.overAllocated;
  if (finding && s.findings.length < 10 && !s.findings.some((f) => f.message === r.message)) {
    s.findings.push({
      index: r.index,
      kind: r.kind,
      outcome: r.overAllocated ? `${r.outcome}+over-allocation` : r.outcome,
      message: r.message ?? '',
    });
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzSummary> {
  const targets = [...(options.targets ?? TARGET_NAMES)];
  const timeoutMs = options.timeoutMs ?? 5000;
  const started = performance.now();
  const summaries: Record<string, TargetSummary> = Object.fromEntries(targets.map((t) => [t, emptySummary()]));
  const firstResultAt = new Map<string, number>();
  const record = (r: CaseResult) => {
    const now = performance.now();
    if (!firstResultAt.has(r.target)) firstResultAt.set(r.target, now - r.ms);
    summaries[r.target]!.wall_ms = Math.round(now - firstResultAt.get(r.target)!);
    add(summaries[r.target]!, r);
    options.onResult?.(r);
  };

  let startTarget = 0;
  let startCase = 0;
  while (startTarget < targets.length) {
    const heartbeat = new SharedArrayBuffer(12);
    const beat = new Int32Array(heartbeat);
    const job: WorkerJob = {
      seed: options.seed,
      cases: options.cases,
      targets,
      startTarget,
      startCase,
      heartbeat,
      only: options.only ?? -1,
    };
    // tsx compiles the TypeScript worker (the tree uses .ts imports and const enums); see worker-entry.mjs.
    const worker = new Worker(new URL('./worker-entry.mjs', import.meta.url), {
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: 2048 },
    });
    const end = await new Promise<{ how: 'done' } | { how: 'hang' | 'crash'; message: string }>((resolve) => {
      let lastTick = -1;
      let since = performance.now();
      const watchdog = setInterval(
        () => {
          const tick = Atomics.load(beat, 2);
          if (tick !== lastTick) {
            lastTick = tick;
            since = performance.now();
          } else if (tick > 0 && performance.now() - since > timeoutMs) {
            clearInterval(watchdog);
            resolve({ how: 'hang', message: `no result after ${timeoutMs} ms` });
          }
        },
        Math.min(100, timeoutMs / 4),
      );
      worker.on('message', (m: { type: 'result'; result: CaseResult } | { type: 'done' }) => {
        if (m.type === 'result') {
          record(m.result);
          since = performance.now();
          lastTick = Atomics.load(beat, 2);
        } else {
          clearInterval(watchdog);
          resolve({ how: 'done' });
        }
      });
      worker.on('error', (err) => {
        clearInterval(watchdog);
        resolve({ how: 'crash', message: `${err.name}: ${err.message}`.slice(0, 300) });
      });
      worker.on('exit', (code) => {
        clearInterval(watchdog);
        resolve(code === 0 ? { how: 'done' } : { how: 'crash', message: `worker exited with code ${code}` });
      });
    });
    await worker.terminate();
    if (end.how === 'done') break;
    // The case in flight is the one after the last result: the heartbeat names it.
    const position = Atomics.load(beat, 0);
    const index = Atomics.load(beat, 1);
    if (Atomics.load(beat, 2) === 0) throw new Error(`the fuzz worker failed before its first case: ${end.message}`);
    const target = targets[position]!;
    record({
      target,
      index,
      kind: 'unknown',
      outcome: end.how,
      ms: end.how === 'hang' ? timeoutMs : 0,
      inputBytes: 0,
      allocBytes: 0,
      allocPeak: 0,
      overAllocated: false,
      message: end.message,
    });
    if (options.only !== undefined && options.only >= 0) {
      startTarget = position + 1;
      startCase = 0;
    } else if (index + 1 >= options.cases) {
      startTarget = position + 1;
      startCase = 0;
    } else {
      startTarget = position;
      startCase = index + 1;
    }
  }

  const totals = { cases: 0, untyped: 0, invalid: 0, hangs: 0, crashes: 0, over_allocations: 0 };
  for (const s of Object.values(summaries)) {
    totals.cases += s.cases;
    totals.untyped += s.untyped;
    totals.invalid += s.invalid;
    totals.hangs += s.hangs;
    totals.crashes += s.crashes;
    totals.over_allocations += s.over_allocations;
  }
  return {
    fuzz: true,
    seed: options.seed,
    cases_per_target: options.only !== undefined && options.only >= 0 ? 1 : options.cases,
    timeout_ms: timeoutMs,
    wall_s: Math.round((performance.now() - started) / 100) / 10,
    totals,
    targets: summaries,
  };
}
