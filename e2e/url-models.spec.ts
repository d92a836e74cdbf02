/**
 * Models by URL in a real Chromium: a Hugging Face folder (stories-layerskip) served by the e2e
 * fixture server under /__e2e/hf/<flags>/<id>/ (e2e/fixture-server.ts), loaded with
 * `w.text(url | { url, integrity, sha256 })` through the same store as registry models.
 */
import type { Page } from '@playwright/test';
import { test, expect, serverLog, modelFile, type LoggedRequest } from './fixtures.ts';

const ID = 'stories-layerskip';
const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const SHA256 = Object.fromEntries(FILES.map((n) => [n, modelFile(ID, n).sha256]));
const TOTAL = FILES.reduce((s, n) => s + modelFile(ID, n).size, 0);
/** Relative to the harness page (/e2e/pages/harness.html): relative URLs resolve against the page. */
const folder = (flags = '-') => `../../__e2e/hf/${flags}/${ID}/`;

interface Outcome {
  tokens: number[] | null;
  error: { code: string; message: string } | null;
  source: string | null;
  events: { type: string; [k: string]: unknown }[];
  entries: { id: string; revision: string; integrity?: string }[];
}

/** Loads `source` with w.text() in the page and generates 16 greedy tokens. */
async function load(page: Page, storeName: string, source: unknown, estimate?: { quota: number; usage: number }): Promise<Outcome> {
  return page.evaluate(
    async ({ storeName, source, estimate }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName, ...(estimate ? { estimate: async () => estimate } : {}) });
      const events: { type: string; [k: string]: unknown }[] = [];
      let tokens: number[] | null = null;
      let error: { code: string; message: string } | null = null;
      let source_: string | null = null;
      try {
        const lm = await w.text(source as Parameters<typeof w.text>[0], { onProgress: (e) => events.push(e) });
        source_ = lm.source;
        tokens = (await lm.complete('Once upon a time', { maxTokens: 16, greedy: true })).tokens;
        lm.dispose();
      } catch (e) {
        const err = e as { code?: string; message?: string };
        error = { code: err.code ?? 'not-a-WhittleError', message: err.message ?? String(e) };
      }
      const entries = (await w.store.list()).map((e) => ({ id: e.id, revision: e.revision, ...(e.integrity ? { integrity: e.integrity } : {}) }));
      return { tokens, error, source: source_, events, entries };
    },
    { storeName, source, estimate },
  );
}

/** The fixture server logs the method too (fixtures.ts's type predates HEAD requests). */
const hfRequests = async (page: Page) => ((await serverLog(page)) as (LoggedRequest & { method?: string })[]).filter((l) => l.url.includes('/__e2e/hf/'));

test.beforeEach(async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'loading by URL is backend-independent');
  await serverLog(harness, true);
});

test('integrity: none loads the registry model\'s tokens with progress; after a reload, zero network requests', async ({ harness }) => {
  const registry = await load(harness, 'url-none', ID);
  expect(registry.error).toBeNull();
  await serverLog(harness, true);

  const first = await load(harness, 'url-none', { url: folder(), integrity: 'none' });
  expect(first.error).toBeNull();
  expect(first.source).toBe('network');
  expect(first.tokens).toEqual(registry.tokens);
  expect(first.events[0]).toMatchObject({ type: 'start', files: FILES.length, totalBytes: TOTAL });
  const progress = first.events.filter((e) => e.type === 'progress') as unknown as { overallLoaded: number; overallTotal: number }[];
  expect(progress.length).toBeGreaterThan(1);
  expect(progress.at(-1)).toMatchObject({ overallLoaded: TOTAL, overallTotal: TOTAL });
  expect(first.events.at(-1)).toMatchObject({ type: 'done', source: 'network', bytes: TOTAL });
  const absolute = new URL(folder(), harness.url()).href;
  expect(first.entries).toContainEqual({ id: absolute, revision: expect.stringMatching(/^http-[0-9a-f]{16}$/) as unknown as string, integrity: 'none' });
  // whittle.json (absent), one HEAD per file for its size, then one GET per file.
  const log = await hfRequests(harness);
  expect(log.filter((l) => l.url.endsWith('whittle.json')).map((l) => l.status)).toEqual([404]);
  expect(log.filter((l) => l.method === 'GET' && l.status === 200).map((l) => l.url.split('/').pop()).sort()).toEqual([...FILES].sort());

  await harness.reload();
  await expect(harness.locator('#status')).toHaveText('ready');
  await serverLog(harness, true);
  const seen: string[] = [];
  harness.on('request', (req) => seen.push(req.url()));
  const second = await load(harness, 'url-none', { url: folder(), integrity: 'none' });
  expect(second.error).toBeNull();
  expect(second.source).toBe('cache');
  expect(second.tokens).toEqual(registry.tokens);
  expect(await hfRequests(harness)).toEqual([]);
  // (The dev server's source modules also live under /models/; model files are what count.)
  expect(seen.filter((u) => u.includes('/__e2e/') || u.includes(`/models/${ID}/`) || u.endsWith('/models/manifests.json'))).toEqual([]);
});

test('sha256 given by the caller verifies the files; a wrong one is INTEGRITY and caches nothing', async ({ harness }) => {
  const ok = await load(harness, 'url-sha', { url: folder(), sha256: SHA256 });
  expect(ok.error).toBeNull();
  expect(ok.tokens).toHaveLength(16);
  expect(ok.entries).toHaveLength(1);
  expect(ok.entries[0]!.integrity).toBeUndefined();

  const wrong = await load(harness, 'url-sha-wrong', { url: folder(), sha256: { ...SHA256, 'model.safetensors': 'f'.repeat(64) } });
  expect(wrong.error?.code).toBe('INTEGRITY');
  expect(wrong.error?.message).toContain('model.safetensors');
  expect(wrong.entries).toEqual([]);
});

test('without integrity or hashes the load is an INVALID_ARGUMENT that explains the choice, before any model byte', async ({ harness }) => {
  const r = await load(harness, 'url-missing', folder());
  expect(r.error?.code).toBe('INVALID_ARGUMENT');
  expect(r.error?.message).toContain("integrity: 'none'");
  expect(r.error?.message).toContain('whittle.json');
  expect(r.error?.message).toContain('sha256');
  expect((await hfRequests(harness)).map((l) => l.url.split('/').pop())).toEqual(['whittle.json']);
  expect(r.entries).toEqual([]);
});

test('a size lie is refused: by the server (HEAD vs body) and by a published whittle.json', async ({ harness }) => {
  const head = await load(harness, 'url-lie', { url: folder('headlie'), integrity: 'none' });
  expect(head.error?.code).toBe('INTEGRITY');
  expect(head.error?.message).toMatch(/model\.safetensors: the server has \d+ bytes but the manifest says \d+/);
  expect(head.entries).toEqual([]);
  const published = await load(harness, 'url-lie', folder('manifestlie'));
  expect(published.error?.code).toBe('INTEGRITY');
  expect(published.entries).toEqual([]);
});

test('a published whittle.json verifies a sharded BF16 folder with no options; a cut connection resumes with Range', async ({ harness }) => {
  const token = Math.random().toString(36).slice(2);
  const r = await load(harness, 'url-manifest', folder(`manifest,bf16x3,cut=1000000,t=${token}`));
  expect(r.error).toBeNull();
  expect(r.tokens).toHaveLength(16);
  expect(r.entries).toEqual([{ id: expect.stringContaining('/__e2e/hf/') as unknown as string, revision: 'e2e' }]);
  expect(r.events.some((e) => e.type === 'retry')).toBe(true);
  const log = await hfRequests(harness);
  const shards = log.filter((l) => /model-0000\d-of-00003\.safetensors$/.test(l.url));
  expect(new Set(shards.map((l) => l.url)).size).toBe(3);
  expect(shards.some((l) => l.status === 206 && /^bytes=\d+-$/.test(l.range ?? ''))).toBe(true);
  expect(log.some((l) => l.method === 'HEAD')).toBe(false); // whittle.json gave every size
});

test('too little quota is a QUOTA error before any model file is requested', async ({ harness }) => {
  const r = await load(harness, 'url-quota', { url: folder(), integrity: 'none' }, { quota: 1_000_000, usage: 900_000 });
  expect(r.error?.code).toBe('QUOTA');
  expect((await hfRequests(harness)).filter((l) => l.method === 'GET' && l.url.endsWith('.safetensors'))).toEqual([]);
});
