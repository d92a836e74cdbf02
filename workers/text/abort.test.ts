/**
 * The long calls stop on an AbortSignal within one step or forward pass, with
 * WhittleError('ABORTED'), and leave the model usable: on the engine (perplexity,
 * calibrateExits) and through the worker's surface, where a signal becomes a job id and
 * cancelJob (prune, perplexity, calibrateExits), the same class the text worker exposes.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { TextService } from './service.ts';

const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];
const checkpoint = () => readLocalModelFile('stories260K', 'stories260K.bin');
const tokenizer = () => readLocalModelFile('stories260K', 'tok512.bin');
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

/** Runs `call`, aborting `after` ms in; resolves with its error (or fails) and how long it ran. */
async function abortAfter(after: number, call: (signal: AbortSignal) => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), after);
  const t = performance.now();
  try {
    await call(controller.signal);
    throw new Error('the call finished before the abort');
  } catch (error) {
    return { error, ms: performance.now() - t };
  } finally {
    clearTimeout(timer);
  }
}

async function greedyTokens(engine: TextEngine, n: number): Promise<number[]> {
  for await (const ev of engine.generate([1], { maxTokens: n, greedy: true, stopTokens: [] })) if (ev.type === 'done') return ev.tokens;
  throw new Error('no done event');
}

describe('aborting the engine', async () => {
  const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(checkpoint(), tokenizer()));
  const text = DEFAULT_CALIBRATION_TEXT.slice(0, 900); // a few hundred one-token steps

  it('perplexity stops within a step of the abort, then runs again', async () => {
    const t = performance.now();
    const full = await engine.perplexity(text);
    const fullMs = performance.now() - t;
    expect(full.predictions).toBeGreaterThan(200);
    const { error, ms } = await abortAfter(fullMs / 10, (signal) => engine.perplexity(text, { signal }));
    expect(error).toMatchObject({ code: 'ABORTED' });
    expect(ms).toBeLessThan(fullMs / 2);
    await expect(engine.perplexity(text, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(await engine.perplexity(text, { signal: new AbortController().signal })).toEqual(full);
    expect(await greedyTokens(engine, 5)).toEqual(GOLDEN.slice(0, 5));
  });

  it('calibrateExits stops between its graph runs, then runs again', async () => {
    await expect(engine.calibrateExits({ signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    // The profile compiles and runs a graph per block and the head: the abort lands at the next checkpoint.
    const { error } = await abortAfter(1, (signal) => engine.calibrateExits({ calibration: 'Lily and Tom went to the park.', signal }));
    expect(error).toMatchObject({ code: 'ABORTED' });
    const done = await engine.calibrateExits({ calibration: 'Lily and Tom went to the park.' });
    expect(done.choice.exit).toBeGreaterThanOrEqual(1);
    expect(await greedyTokens(engine, 5)).toEqual(GOLDEN.slice(0, 5));
  });
});

describe('aborting through the worker surface (job ids and cancelJob)', async () => {
  const service = new TextService();
  await service.init({ backend: 'wasm', numThreads: 1 });
  await service.load({ format: 'llama2c', checkpoint: checkpoint(), tokenizer: tokenizer() });
  let nextJob = 1;
  /** What TextModel does with a signal: name the call, cancel it by name. */
  const cancellable = <T>(signal: AbortSignal, call: (job: number) => Promise<T>): Promise<T> => {
    const job = nextJob++;
    signal.addEventListener('abort', () => service.cancelJob(job), { once: true });
    return call(job);
  };

  it('prune stops within one scoring graph run and leaves the plan as it was', async () => {
    // Scoring compiles 5 block graphs and a head, and runs them 5 + 10 + 6 times.
    const t = performance.now();
    const result = await service.prune({ remove: 1 });
    const fullMs = performance.now() - t;
    expect(result.plan.layers).toHaveLength(4);
    await service.setPlan({ layers: [0, 1, 2, 3, 4] });
    // Another calibration text, so the scores are not the cached ones.
    const calibration = `${DEFAULT_CALIBRATION_TEXT} The end.`;
    const { error, ms } = await abortAfter(fullMs / 10, (signal) => cancellable(signal, (job) => service.prune({ remove: 1, calibration, job })));
    expect(error).toMatchObject({ code: 'ABORTED' });
    expect(ms).toBeLessThan(fullMs / 2);
    expect(service.describe().plan).toEqual({ layers: [0, 1, 2, 3, 4] });
  });

  it('perplexity and calibrateExits stop on cancelJob; the model then generates the golden tokens', async () => {
    const text = DEFAULT_CALIBRATION_TEXT.slice(0, 900);
    const { error } = await abortAfter(20, (signal) => cancellable(signal, (job) => service.perplexity(text, { job })));
    expect(error).toMatchObject({ code: 'ABORTED' });
    const again = await abortAfter(1, (signal) => cancellable(signal, (job) => service.calibrateExits({ calibration: 'Tom had a red ball.', job })));
    expect(again.error).toMatchObject({ code: 'ABORTED' });
    service.cancelJob(12345); // a job that is not running: nothing happens
    const done = await service.complete([1], { maxTokens: 20, greedy: true, stopTokens: [] });
    expect(done.tokens).toEqual(GOLDEN);
  });
});
