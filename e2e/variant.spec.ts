/**
 * Compressed variants in a real Chromium (sdk/text-variant.ts, models/compress/variant.ts): a
 * load with `compress` saves the packed weights as a derived store entry; the next load with the
 * same setting runs from it (no source weights read, no quantization) with the same tokens; a
 * variant folder written by `whittle compress` loads by URL; no room for the variant skips it
 * (the model still loads); deleting the source deletes its variants.
 */
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from '@playwright/test';
import { test, expect, serverLog } from './fixtures.ts';

const ID = 'stories-layerskip';
const SETTING = { linear: 'q4', group: 32 } as const;
const VARIANT_ID = `${ID}#q4-g32-rtn`;
/** Written by `whittle compress` into public/models/ (git-ignored), served under /__e2e/hf/-/<dir>/. */
const HOSTED = 'e2e-variant-stories-layerskip-q4';

interface Outcome {
  tokens: number[] | null;
  error: { code: string; message: string } | null;
  variant: string | null;
  weights: unknown;
  events: { type: string; [k: string]: unknown }[];
  entries: { id: string; revision: string; bytes: number; files: { name: string; sha256: string }[]; derivedFrom?: { id: string; revision: string; variant: string } }[];
  ms: number;
}

/** Loads `source` in the page (a fresh Whittle on `storeName`), 16 greedy tokens, and the store's list after. */
async function load(page: Page, storeName: string, source: unknown, options: { compress?: unknown; tightAfter?: number } = {}): Promise<Outcome> {
  return page.evaluate(
    async ({ storeName, source, options }) => {
      const { whittle } = window.harness;
      let estimates = 0;
      // tightAfter: storage estimates after the n-th say the origin is full (the variant's write comes after the source's).
      const estimate = options.tightAfter === undefined ? undefined : async () => (++estimates > options.tightAfter! ? { quota: 1000, usage: 1000 } : { quota: 1e12, usage: 0 });
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName, ...(estimate ? { estimate } : {}) });
      const events: { type: string; [k: string]: unknown }[] = [];
      let tokens: number[] | null = null;
      let error: { code: string; message: string } | null = null;
      let variant: string | null = null;
      let weights: unknown = null;
      const t0 = performance.now();
      let ms = 0;
      try {
        const lm = await w.text(source as Parameters<typeof w.text>[0], { onProgress: (e) => events.push(e), ...(options.compress ? { compress: options.compress as never } : {}) });
        ms = performance.now() - t0;
        variant = lm.variant ?? null;
        weights = lm.info.weights ?? null;
        tokens = (await lm.complete('Once upon a time', { maxTokens: 16, greedy: true })).tokens;
        lm.dispose();
      } catch (e) {
        const err = e as { code?: string; message?: string };
        error = { code: err.code ?? 'not-a-WhittleError', message: err.message ?? String(e) };
      }
      const entries = (await w.store.list()).map((e) => ({ id: e.id, revision: e.revision, bytes: e.bytes, files: e.files.map(({ name, sha256 }) => ({ name, sha256 })), ...(e.derivedFrom ? { derivedFrom: e.derivedFrom } : {}) }));
      return { tokens, error, variant, weights, events, entries, ms };
    },
    { storeName, source, options },
  );
}

const clearStore = (page: Page, storeName: string) =>
  page.evaluate(async (storeName) => (await window.harness.whittle.Whittle.create({ backend: 'wasm', storeName })).store.clear(), storeName);

test.beforeAll(() => {
  const out = join(process.cwd(), 'public/models', HOSTED);
  rmSync(out, { recursive: true, force: true });
  const r = spawnSync(process.execPath, ['sdk/cli/whittle.mjs', 'compress', ID, '--weights', 'q4', '--group', '32', '--out', out], { encoding: 'utf8', timeout: 120_000 });
  expect(r.status, r.stderr).toBe(0);
});

test.beforeEach(async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'the store path is backend-independent (kernel forms per backend: models/compress/variant.test.ts)');
  await serverLog(harness, true);
});

test('a load with compress saves the variant; the next one loads it (no source weights, same tokens); deleting the model deletes it', async ({ harness }) => {
  await clearStore(harness, 'variant-a');
  const first = await load(harness, 'variant-a', ID, { compress: SETTING });
  expect(first.error).toBeNull();
  // The first load compresses the source into the store a block at a time, then runs from that variant.
  expect(first.variant).toBe(VARIANT_ID);
  expect(first.weights).toEqual(SETTING);
  const progress = first.events.filter((e) => e.type === 'variant' && e.action === 'compressing') as unknown as { bytes: number; total: number }[];
  expect(progress.length).toBeGreaterThan(8); // header, table, blocks, ...
  expect(progress.every((e, i) => e.total === progress[0]!.total && (i === 0 || e.bytes > progress[i - 1]!.bytes))).toBe(true);
  expect(progress.at(-1)!.bytes).toBe(progress[0]!.total);
  const saved = first.events.find((e) => e.type === 'variant' && e.action !== 'compressing');
  expect(saved).toMatchObject({ type: 'variant', modelId: ID, variant: VARIANT_ID, action: 'saved' });
  expect(first.events.filter((e) => e.type === 'variant').map((e) => e.action).filter((a) => a !== 'compressing')).toEqual(['saved', 'loaded']);
  const source = first.entries.find((e) => e.id === ID)!;
  const derived = first.entries.find((e) => e.id === VARIANT_ID)!;
  expect(derived).toMatchObject({ revision: `${source.revision}+variant1`, derivedFrom: { id: ID, revision: source.revision, variant: 'q4-g32-rtn' } });
  // The packed 4-bit weights and the shared config/tokenizer files: under a third of the source.
  expect(derived.bytes).toBeLessThan(source.bytes / 3);

  const second = await load(harness, 'variant-a', ID, { compress: SETTING });
  expect(second.error).toBeNull();
  expect(second.variant).toBe(VARIANT_ID);
  expect(second.weights).toEqual(SETTING);
  expect(second.tokens).toEqual(first.tokens);
  expect(second.events).toContainEqual(expect.objectContaining({ type: 'variant', action: 'loaded', variant: VARIANT_ID }));
  // The source weights were not read: no store event touches model.safetensors, every file came from the variant entry.
  const files = second.events.filter((e) => e.type === 'file-done');
  expect(files.map((e) => e.file)).not.toContain('model.safetensors');
  expect(files.map((e) => e.file)).toContain('model.whittle.safetensors');
  expect(files.every((e) => e.modelId === VARIANT_ID)).toBe(true);
  console.log(`[variant] stories-layerskip q4 g32 in Chromium (WASM): first load with compression ${first.ms.toFixed(0)} ms, from the stored variant ${second.ms.toFixed(0)} ms`);

  // Another setting is another variant; a plain load ignores them.
  const plain = await load(harness, 'variant-a', ID);
  expect(plain.variant).toBeNull();
  expect(plain.weights).toBeNull();

  const deleted = await harness.evaluate(async () => {
    const w = await window.harness.whittle.Whittle.create({ backend: 'wasm', storeName: 'variant-a' });
    await w.store.delete('stories-layerskip');
    return (await w.store.list()).map((e) => e.id);
  });
  expect(deleted).toEqual([]);
});

test('a variant folder written by `whittle compress` loads by URL, verified by its whittle.json, with the tokens (and the very bytes) of on-device compression', async ({ harness }) => {
  await clearStore(harness, 'variant-url');
  await clearStore(harness, 'variant-url-hosted');
  const onDevice = await load(harness, 'variant-url', ID, { compress: SETTING });
  expect(onDevice.error).toBeNull();
  await serverLog(harness, true);
  const hosted = await load(harness, 'variant-url-hosted', `../../__e2e/hf/-/${HOSTED}/`);
  expect(hosted.error).toBeNull();
  expect(hosted.weights).toEqual(SETTING);
  expect(hosted.tokens).toEqual(onDevice.tokens);
  expect(hosted.variant).toMatch(new RegExp(`/${HOSTED}/$`));
  const got = (await serverLog(harness)).filter((l) => l.status === 200 || l.status === 206).map((l) => l.url.split('/').pop());
  expect(got).toContain('model.whittle.safetensors');
  expect(got).not.toContain('model.safetensors');
  // The writer is deterministic: the CLI's file is the one the browser made (same sha256, so a
  // store that holds one never downloads the other).
  const sha = (o: Outcome, id: string | RegExp) => o.entries.find((e) => (typeof id === 'string' ? e.id === id : id.test(e.id)))?.files.find((f) => f.name === 'model.whittle.safetensors')?.sha256;
  expect(sha(hosted, new RegExp(`/${HOSTED}/$`))).toBeDefined();
  expect(sha(hosted, new RegExp(`/${HOSTED}/$`))).toBe(sha(onDevice, VARIANT_ID));
});

test('no room for the variant: the model still loads, a skipped event says why, nothing is cached for it', async ({ harness }) => {
  await clearStore(harness, 'variant-quota');
  // The first estimate (the source's download) has room; the next (the variant's write) has none.
  const r = await load(harness, 'variant-quota', ID, { compress: SETTING, tightAfter: 1 });
  expect(r.error).toBeNull();
  expect(r.tokens).toHaveLength(16);
  expect(r.events).toContainEqual(expect.objectContaining({ type: 'variant', action: 'skipped', variant: VARIANT_ID, reason: expect.stringMatching(/^QUOTA/) as unknown as string }));
  expect(r.entries.map((e) => e.id)).toEqual([ID]);
});

test('a stored variant that fails verification is discarded and the source loads (and saves a good one)', async ({ harness }) => {
  await clearStore(harness, 'variant-bad');
  const first = await load(harness, 'variant-bad', ID, { compress: SETTING });
  expect(first.error).toBeNull();
  const sha = first.entries.find((e) => e.id === VARIANT_ID)!.files.find((f) => f.name === 'model.whittle.safetensors')!.sha256;
  // Same size, broken header (its JSON starts at byte 8): what a disk error or another script could leave.
  await harness.evaluate(async (sha) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('variant-bad');
    const w = await (await dir.getFileHandle(sha)).createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: 8, data: new TextEncoder().encode('!!!!') });
    await w.close();
  }, sha);
  const second = await load(harness, 'variant-bad', ID, { compress: SETTING });
  expect(second.error).toBeNull();
  // Compressed from the source into the store again, and loaded from there.
  expect(second.variant).toBe(VARIANT_ID);
  expect(second.tokens).toEqual(first.tokens);
  const actions = second.events.filter((e) => e.type === 'variant' && e.action !== 'compressing').map((e) => e.action);
  expect(actions).toEqual(['loaded', 'discarded', 'saved', 'loaded']);
  expect(second.events.find((e) => e.action === 'discarded')).toMatchObject({ reason: expect.stringMatching(/not UTF-8 JSON/) as unknown as string });
  const third = await load(harness, 'variant-bad', ID, { compress: SETTING });
  expect(third.variant).toBe(VARIANT_ID);
  expect(third.tokens).toEqual(first.tokens);
});

test('aborting the first load while its variant is being compressed rejects ABORTED and leaves no variant and no partial; the next load makes it', async ({ harness }) => {
  await clearStore(harness, 'variant-abort');
  const r = await harness.evaluate(
    async ({ ID, SETTING }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'variant-abort' });
      const ac = new AbortController();
      let compressing = 0;
      const code = await w
        .text(ID, { compress: SETTING, signal: ac.signal, onProgress: (e) => e.type === 'variant' && e.action === 'compressing' && ++compressing === 3 && ac.abort() })
        .then(
          (lm) => (lm.dispose(), 'loaded'),
          (e: { code?: string }) => e.code ?? 'not-a-WhittleError',
        );
      const ids = (await w.store.list()).map((e) => e.id);
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('variant-abort');
      const names: string[] = [];
      for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
      const again = await w.text(ID, { compress: SETTING });
      const variant = again.variant ?? null;
      again.dispose();
      return { code, compressing, ids, partials: names.filter((n) => n.includes('.part') || n.startsWith('stream-')), variant };
    },
    { ID, SETTING },
  );
  expect(r.code).toBe('ABORTED');
  expect(r.compressing).toBe(3);
  expect(r.ids).toEqual([ID]); // the source stays cached; no variant entry
  expect(r.partials).toEqual([]);
  expect(r.variant).toBe(VARIANT_ID);
});
