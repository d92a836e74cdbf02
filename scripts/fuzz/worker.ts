/**
 * The fuzz worker thread: runs cases in order and posts each result; the parent (runner.ts)
 * watches a shared heartbeat and terminates this thread when one case runs past the time limit,
 * which is the only way to stop a synchronous parser that loops forever.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { installAllocProbe } from './alloc.ts';
import { runCase } from './case.ts';
import { loadTarget } from './targets/index.ts';

export interface WorkerJob {
  seed: number;
  cases: number;
  targets: string[];
  /** Where to resume after a hang: target position and case index. */
  startTarget: number;
  startCase: number;
  /** [target position, case index, 1 while a case runs]. */
  heartbeat: SharedArrayBuffer;
  /** Only this case of each target (replay), or -1. */
  only: number;
}

const job = workerData as WorkerJob;
const beat = new Int32Array(job.heartbeat);
installAllocProbe();

for (let t = job.startTarget; t < job.targets.length; t++) {
  const target = loadTarget(job.targets[t]!);
  const first = job.only >= 0 ? job.only : t === job.startTarget ? job.startCase : 0;
  const last = job.only >= 0 ? job.only + 1 : job.cases;
  for (let i = first; i < last; i++) {
    Atomics.store(beat, 0, t);
    Atomics.store(beat, 1, i);
    Atomics.add(beat, 2, 1);
    parentPort!.postMessage({ type: 'result', result: runCase(target, job.seed, i), position: t });
  }
}
parentPort!.postMessage({ type: 'done' });
