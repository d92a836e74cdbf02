/**
 * The one text model the playground's panels share (story, dropout decoding, width sweep): one
 * worker, so a plan pruned in one panel is the plan the others generate with. The worker runs
 * one thing at a time (a plan cannot change mid-generation), so panels take turns through
 * `exclusive`.
 */
import type { TextModel, TextModelInfo, Whittle } from 'whittle';
import { fmtBytes } from './dom.ts';

let whittle: Whittle | null = null;
let loaded: { id: string; model: TextModel } | null = null;
let turn: Promise<unknown> = Promise.resolve();
const planListeners: ((info: TextModelInfo) => void)[] = [];

/** The Whittle instance of the backend the user chose; a new one drops the loaded model (it lived in the old runtime). */
export function useWhittle(instance: Whittle): void {
  whittle = instance;
  dropModel();
}

export function currentWhittle(): Whittle {
  if (!whittle) throw new Error('the backend is still being probed');
  return whittle;
}

/** The loaded model, if it is `id` (or any model, without an id). */
export function loadedModel(id?: string): TextModel | null {
  return loaded && (id === undefined || loaded.id === id) ? loaded.model : null;
}

export function loadedModelId(): string | null {
  return loaded?.id ?? null;
}

export function dropModel(): void {
  loaded?.model.dispose();
  loaded = null;
}

/** Loads `id` into a worker unless it is the loaded one; `status` hears the download progress. */
export async function loadModel(id: string, signal: AbortSignal, status: (text: string) => void): Promise<TextModel> {
  const current = loadedModel(id);
  if (current) return current;
  dropModel();
  status(`loading ${id} into a worker…`);
  const model = await currentWhittle().text(id, {
    signal,
    onProgress: (e) => {
      if (e.type === 'progress') status(`downloading ${e.file}: ${fmtBytes(e.overallLoaded)} / ${fmtBytes(e.overallTotal)}`);
    },
  });
  loaded = { id, model };
  announcePlan(model.info);
  return model;
}

/** Panels that show the plan (the story's block checkboxes) hear every change of it. */
export function onPlanChange(listener: (info: TextModelInfo) => void): void {
  planListeners.push(listener);
}

export function announcePlan(info: TextModelInfo): void {
  for (const listener of planListeners) listener(info);
}

/** Runs `task` after every task started before it has settled: one worker job at a time. */
export function exclusive<T>(task: () => Promise<T>): Promise<T> {
  const run = turn.then(task);
  turn = run.catch(() => undefined);
  return run;
}
