/**
 * Sparsity in a real Chromium worker (issue #14): `lm.compress({ linear, sparsity })` masks
 * stories260K's block linears by Wanda (norms measured through the worker's probe graphs) and
 * keeps generating what the Node engine generates with the same setting (whose masks are checked
 * against Wanda by hand and the reference forward in workers/text/sparsify.test.ts); and a load
 * with `compress: { sparsity }` caches a sparse variant that the next load runs from, at most 60%
 * of the source's bytes for fp32 2:4.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromLlama2c } from '../workers/text/model.ts';
import { test, expect } from './fixtures.ts';

const PROMPT = [1, 403, 407, 261];
const SETTING = { linear: 'f32', sparsity: { pattern: '2:4' } } as const;

async function nodeTokens(n: number): Promise<number[]> {
  const dir = join(import.meta.dirname, '..', 'public', 'models', 'stories260K');
  const buf = (f: string) => {
    const b = readFileSync(join(dir, f));
    return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  };
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(buf('stories260K.bin'), buf('tok512.bin')));
  await engine.compress({ linear: 'f32', sparsity: { pattern: '2:4' } });
  let tokens: number[] = [];
  for await (const ev of engine.generate(PROMPT, { maxTokens: n, greedy: true, stopTokens: [] })) if (ev.type === 'done') tokens = ev.tokens;
  await engine.dispose();
  return tokens;
}

test('lm.compress({ sparsity: 2:4 }) masks in the worker (no download) and generates what the Node engine does', async ({ harness, backendName }) => {
  const r = await harness.evaluate(
    async ({ backend, prompt, setting }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend, storeName: `sparsity-${backend}` });
      const lm = await w.text('stories260K');
      const dense = await lm.complete(prompt, { maxTokens: 12, temperature: 0, stopTokens: [] });
      const before = performance.getEntriesByType('resource').length;
      const info = await lm.compress(setting as never);
      const sparse = await lm.complete(prompt, { maxTokens: 12, temperature: 0, stopTokens: [] });
      const requests = performance.getEntriesByType('resource').slice(before).filter((e) => e.name.includes('/models/') || e.name.includes('/__e2e/')).length;
      const bad = await lm.compress({ linear: 'q8', sparsity: { pattern: '3:4' } } as never).then(
        () => null,
        (e: { code?: string }) => e.code ?? 'unknown',
      );
      lm.dispose();
      return { dense: dense.tokens, sparse: sparse.tokens, weights: info.weights, requests, bad };
    },
    { backend: backendName, prompt: PROMPT, setting: SETTING },
  );
  expect(r.weights).toEqual(SETTING);
  expect(r.requests).toBe(0);
  expect(r.sparse).not.toEqual(r.dense);
  expect(r.bad).toBe('INVALID_ARGUMENT');
  // WASM runs Node's kernels: every token agrees. WebGPU (SwiftShader) measures Wanda's norms
  // in another summation order, so a near-tie could flip one mask entry: the first 8 are compared.
  const n = backendName === 'wasm' ? 12 : 8;
  expect(r.sparse.slice(0, n)).toEqual((await nodeTokens(12)).slice(0, n));
});

test('a load with compress: { sparsity } caches a sparse variant (<= 60% of the fp32 source) that the next load runs from', async ({ harness, backendName }) => {
  test.skip(backendName !== 'wasm', 'the store path is backend-independent (kernel forms per backend: models/compress/sparsity.test.ts)');
  const run = () =>
    harness.evaluate(async (setting) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'sparsity-variant' });
      const lm = await w.text('stories-layerskip', { compress: setting as never });
      const tokens = (await lm.complete('Once upon a time', { maxTokens: 16, greedy: true })).tokens;
      const variant = lm.variant ?? null;
      lm.dispose();
      const entries = (await w.store.list()).map((e) => ({ id: e.id, bytes: e.bytes }));
      return { tokens, variant, entries };
    }, SETTING);
  await harness.evaluate(async () => (await window.harness.whittle.Whittle.create({ backend: 'wasm', storeName: 'sparsity-variant' })).store.clear());
  const first = await run();
  expect(first.variant).toBeNull();
  const id = 'stories-layerskip#f32-rtn-sparse24-wanda';
  const saved = first.entries.find((e) => e.id === id);
  expect(saved, JSON.stringify(first.entries)).toBeDefined();
  const source = statSync(join(import.meta.dirname, '..', 'public', 'models', 'stories-layerskip', 'model.safetensors')).size;
  // The entry holds the variant plus the small tokenizer / config files.
  expect(saved!.bytes).toBeLessThanOrEqual(0.6 * source);
  const second = await run();
  expect(second.variant).toBe(id);
  expect(second.tokens).toEqual(first.tokens);
});
