/** Worker lifecycle: a worker that dies mid-call rejects with WORKER_DIED; the next call works. */
import { test, expect } from './fixtures.ts';

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
