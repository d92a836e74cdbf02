/**
 * Worker factories. Each is a literal `new Worker(new URL(...), { type: 'module' })` so that
 * Vite (and other bundlers) see the entry and bundle it as a module worker.
 */
import type { SpawnWorker } from './worker-client.ts';

export const spawnHeadWorker: SpawnWorker = (name) =>
  new Worker(new URL('../../workers/head.worker.ts', import.meta.url), { type: 'module', name });

export const spawnTextWorker: SpawnWorker = (name) =>
  new Worker(new URL('../../workers/text.worker.ts', import.meta.url), { type: 'module', name });

export const spawnCodecWorker: SpawnWorker = (name) =>
  new Worker(new URL('../../workers/codec.worker.ts', import.meta.url), { type: 'module', name });
