/**
 * Worker lifecycle: a worker that dies mid-call rejects with WORKER_DIED and the next call works;
 * faults around it (an uncaught error in a live worker, a load the worker rejects, a death
 * mid-stream, a consumer that stops reading) leave no worker, reload or stream behind.
 */
import { test, expect, modelFile } from './fixtures.ts';

test('a worker killed mid-call rejects with WORKER_DIED and the next call starts a fresh worker', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-death' });
    const head = await w.headModel('stories260K');
    const before = await head.logits([1, 403]);
    const worker = await head.worker();
    const pending = head.logits([1, 403, 407, 261]);
    worker.terminate(); // dies with the call in flight; nobody tells the client
    const err = await pending.then(
      () => null,
      (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message, isWhittle: e instanceof whittle.WhittleError }),
    );
    const after = await head.logits([1, 403]);
    const starts = head.workerStarts;
    head.dispose();
    return { err, starts, same: before.every((v, i) => v === after[i]) };
  });
  expect(r.err).toMatchObject({ code: 'WORKER_DIED', isWhittle: true });
  expect(r.starts).toBe(2);
  expect(r.same).toBe(true);
});

test('errors thrown in the worker arrive as WhittleError with their code', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-errors' });
    const head = await w.headModel('stories260K');
    const err = await head.logits([99999]).then(
      () => null,
      (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message, isWhittle: e instanceof whittle.WhittleError }),
    );
    head.dispose();
    return err;
  });
  expect(r).toMatchObject({ code: 'INVALID_ARGUMENT', isWhittle: true });
  expect(r?.message).toContain('outside the vocabulary');
});

test('forcing WebGPU where there is no adapter is UNSUPPORTED', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const caps = { webgpu: { available: false, features: [], shaderF16: false }, crossOriginIsolated: true, hardwareConcurrency: 2 };
    try {
      whittle.chooseBackend(caps, 'webgpu');
      return null;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  });
  expect(r).toBe('UNSUPPORTED');
});

test('an uncaught error in a worker after start-up leaves it working: pending calls resolve, no restart', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle, spawnTextWorker, liveWorkers } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-uncaught' });
    let starts = 0;
    const lm = await w.text('stories260K', { spawn: (name) => (starts++, spawnTextWorker(name)) });
    const worker = await lm.worker();
    const errored = new Promise<string>((resolve) => worker.addEventListener('error', (ev) => resolve(ev.message), { once: true }));
    // A stray message the worker's RPC cannot read: comlink's handler throws outside its own
    // try, which is an uncaught error in a live worker. A long call is queued behind it, so it
    // is still pending when the page hears of the error.
    worker.postMessage({ id: 'stray', type: 'APPLY', path: ['describe'], argumentList: 'not a list' });
    let settled = false;
    const pending = lm.complete('Once upon a time', { maxTokens: 400, stopTokens: [] }).then(
      (done) => ((settled = true), { tokens: done.tokens.length, error: null }),
      (e: { code?: string }) => ((settled = true), { tokens: 0, error: e.code ?? String(e) }),
    );
    const message = await errored;
    const settledAtError = settled;
    const first = await pending;
    const next = await lm.complete('Lily', { maxTokens: 4 });
    const sameWorker = (await lm.worker()) === worker;
    const live = await liveWorkers('whittle-text:stories260K-', 1);
    lm.dispose();
    return { message, settledAtError, first, next: next.tokens.length, sameWorker, starts, live };
  });
  expect(r.message).toMatch(/map is not a function/);
  expect(r.first).toEqual({ tokens: 400, error: null });
  expect(r.settledAtError).toBe(false); // the call was in flight when the error arrived
  expect(r.next).toBe(4);
  expect(r.sameWorker).toBe(true);
  expect(r.starts).toBe(1);
  expect(r.live).toBe(1);
});

test('a load the worker rejects (BAD_MODEL) leaves no worker running, however often it is tried', async ({ harness }) => {
  const tok = modelFile('stories260K', 'tok512.bin');
  const r = await harness.evaluate(async (tok) => {
    const { whittle, liveWorkers } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-bad-load' });
    // A tokenizer file served as the checkpoint: the store verifies it (the hashes are right),
    // then the worker's llama2.c parser rejects its header.
    const file = (name: string) => ({ name, url: '/models/stories260K/tok512.bin', size: tok.size, sha256: tok.sha256 });
    const manifest = { id: 'bad-checkpoint', revision: 'test', files: [file('bad.bin'), file('tok512.bin')] };
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 5; i++) {
      codes.push(await w.text(manifest).then(() => 'loaded', (e: { code?: string }) => e.code));
    }
    return { codes, live: await liveWorkers('whittle-text:bad-checkpoint-', 0) };
  }, tok);
  expect(r.codes).toEqual(Array(5).fill('BAD_MODEL'));
  expect(r.live).toBe(0);
});

test('a worker killed mid-stream rejects it with WORKER_DIED; nothing respawns or reloads until the next real call', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle, spawnTextWorker, liveWorkers } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-stream-death' });
    // Every worker start loads the model (init + weights): counting starts counts loads.
    let starts = 0;
    const lm = await w.text('stories260K', { spawn: (name) => (starts++, spawnTextWorker(name)) });
    const controller = new AbortController();
    const stream = lm.generate('Once upon a time', { maxTokens: 400, stopTokens: [], signal: controller.signal });
    await stream.next();
    (await lm.worker()).terminate(); // dies with the stream open; nobody tells the client
    let code: string | undefined;
    try {
      while (!(await stream.next()).done);
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    controller.abort(); // the caller's abort, after the death: must not reach a new worker either
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const afterDeath = { starts, live: await liveWorkers('whittle-text:stories260K-', 0) };
    const next = await lm.complete('Lily', { maxTokens: 4 });
    const afterCall = { starts, live: await liveWorkers('whittle-text:stories260K-', 1), tokens: next.tokens.length };
    lm.dispose();
    return { code, afterDeath, afterCall };
  });
  expect(r.code).toBe('WORKER_DIED');
  expect(r.afterDeath).toEqual({ starts: 1, live: 0 });
  expect(r.afterCall).toEqual({ starts: 2, live: 1, tokens: 4 });
});

test('break out of for await cancels the stream in the worker, and the next generation runs at once', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle, workerStreams } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'worker-break' });
    const lm = await w.text('stories260K');
    const worker = await lm.worker();
    for (let i = 0; i < 5; i++) {
      let n = 0;
      for await (const ev of lm.generate('Once upon a time', { maxTokens: 400, stopTokens: [] })) if (ev.type === 'token' && ++n === 3) break;
    }
    // The cancels are fire-and-forget: the worker stops each within a step.
    let streams = await workerStreams(worker);
    for (const until = performance.now() + 5000; streams.running > 0 && performance.now() < until; streams = await workerStreams(worker)) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const next = await lm.complete('Lily', { maxTokens: 4 });
    const afterComplete = await workerStreams(worker);
    lm.dispose();
    return { streams, next: next.tokens.length, afterComplete };
  });
  expect(r.streams).toEqual({ held: 0, running: 0 });
  expect(r.next).toBe(4);
  expect(r.afterComplete).toEqual({ held: 0, running: 0 });
});
