/**
 * The model store in a real Chromium: OPFS, IndexedDB, fetch, Range, quota.
 * Files come from the e2e fixture server, which can cut connections, corrupt bytes and log
 * every request (e2e/fixture-server.ts).
 */
import { test, expect, serverLog, modelFile } from './fixtures.ts';
import type { Page } from '@playwright/test';

const MODEL = 'stories260K';
const FILE = 'stories260K.bin';
const real = modelFile(MODEL, FILE);

interface Scenario {
  query?: string;
  size?: number;
  sha256?: string;
  store?: Record<string, unknown>;
  abortAfterBytes?: number;
  id?: string;
  /** A manifest with integrity: 'none' and no sha256 (what a URL folder without hashes becomes). */
  unverified?: boolean;
}

/** Overwrites 4 bytes of a committed OPFS blob behind the store's back. */
async function damageCachedBlob(page: Page, sha: string): Promise<void> {
  await page.evaluate(async (sha) => {
    const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('whittle');
    const w = await (await dir.getFileHandle(sha)).createWritable({ keepExistingData: true });
    await w.write({ type: 'write', position: 100, data: new Uint8Array([1, 2, 3, 4]) });
    await w.close();
  }, sha);
}

/** Loads a one-file manifest through ModelStore.load in the page; returns events, outcome and state. */
async function load(page: Page, s: Scenario = {}) {
  return page.evaluate(
    async ({ s, real, MODEL, FILE }) => {
      const { whittle } = window.harness;
      const token = Math.random().toString(36).slice(2);
      const manifest = {
        id: s.id ?? MODEL,
        revision: 'test',
        ...(s.unverified ? { integrity: 'none' as const } : {}),
        files: [
          {
            name: FILE,
            url: `/__e2e/file/${MODEL}/${FILE}?t=${token}&${s.query ?? ''}`,
            size: s.size ?? real.size,
            ...(s.unverified ? {} : { sha256: s.sha256 ?? real.sha256 }),
          },
        ],
      };
      const store = await whittle.ModelStore.open({ retryDelayMs: 50, ...(s.store ?? {}) });
      const events: { type: string; [k: string]: unknown }[] = [];
      const controller = new AbortController();
      let error: { code: string; message: string } | null = null;
      let source: string | null = null;
      let sha: string | null = null;
      try {
        const loaded = await store.load(manifest, {
          signal: controller.signal,
          onProgress: (e) => {
            events.push(e);
            if (s.abortAfterBytes !== undefined && e.type === 'progress' && e.loaded >= s.abortAfterBytes) controller.abort();
          },
        });
        source = loaded.source;
        const bytes = await loaded.files.get(FILE)!.arrayBuffer();
        sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
      } catch (e) {
        const err = e as { code?: string; message?: string };
        error = { code: err.code ?? 'not-a-WhittleError', message: err.message ?? String(e) };
      }
      return { events, error, source, sha, has: await store.has(manifest.id, 'test'), list: (await store.list()).map((e) => e.key), backend: store.backend, entry: (await store.entry(manifest.id, 'test')) ?? null };
    },
    { s, real, MODEL, FILE },
  );
}

test.beforeEach(async ({ harness }) => {
  await serverLog(harness, true);
});

test('downloads with per-file and overall progress, verifies, and caches in OPFS', async ({ harness }) => {
  const r = await load(harness);
  expect(r.error).toBeNull();
  expect(r.source).toBe('network');
  expect(r.sha).toBe(real.sha256);
  expect(r.backend).toBe('opfs');
  expect(r.has).toBe(true);
  const progress = r.events.filter((e) => e.type === 'progress') as unknown as { loaded: number; total: number; overallLoaded: number; overallTotal: number }[];
  expect(progress.length).toBeGreaterThan(1);
  for (let i = 1; i < progress.length; i++) expect(progress[i]!.loaded).toBeGreaterThanOrEqual(progress[i - 1]!.loaded);
  expect(progress.at(-1)).toMatchObject({ loaded: real.size, total: real.size, overallLoaded: real.size, overallTotal: real.size });
  expect(r.events[0]).toMatchObject({ type: 'start', totalBytes: real.size });
  expect(r.events.at(-1)).toMatchObject({ type: 'done', source: 'network' });
});

test('a connection cut mid-file resumes with a Range request and the result verifies', async ({ harness }) => {
  const cut = 400_000;
  const r = await load(harness, { query: `cut=${cut}` });
  expect(r.error).toBeNull();
  expect(r.sha).toBe(real.sha256);
  const retry = r.events.find((e) => e.type === 'retry') as { resumeFrom: number } | undefined;
  expect(retry).toBeDefined();
  expect(retry!.resumeFrom).toBeGreaterThan(0);
  expect(retry!.resumeFrom).toBeLessThanOrEqual(cut);
  const log = (await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'));
  expect(log).toHaveLength(2);
  expect(log[0]!.range).toBeNull();
  expect(log[1]).toMatchObject({ range: `bytes=${retry!.resumeFrom}-`, status: 206 });
});

test('a server that ignores Range restarts from zero and still verifies', async ({ harness }) => {
  const r = await load(harness, { query: 'cut=300000&noRange=1' });
  expect(r.error).toBeNull();
  expect(r.sha).toBe(real.sha256);
  const log = (await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'));
  expect(log.map((l) => l.status)).toEqual([200, 200]);
});

test('a corrupted byte is an INTEGRITY error and nothing is cached', async ({ harness }) => {
  const r = await load(harness, { query: 'corrupt=12345' });
  expect(r.error?.code).toBe('INTEGRITY');
  expect(r.error?.message).toContain('sha256');
  expect(r.has).toBe(false);
  expect(r.list).toEqual([]);
  // The bad partial was deleted: the next load starts from byte 0 (no Range) and succeeds.
  await serverLog(harness, true);
  const again = await load(harness);
  expect(again.error).toBeNull();
  const log = (await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'));
  expect(log[0]!.range).toBeNull();
});

test('a manifest that lies about size or hash is refused', async ({ harness }) => {
  const bigger = await load(harness, { size: real.size + 10 });
  expect(bigger.error?.code).toBe('INTEGRITY');
  expect(bigger.error?.message).toContain('manifest says');
  const smaller = await load(harness, { size: real.size - 10 });
  expect(smaller.error?.code).toBe('INTEGRITY');
  const wrongHash = await load(harness, { sha256: 'f'.repeat(64) });
  expect(wrongHash.error?.code).toBe('INTEGRITY');
  expect(wrongHash.has).toBe(false);
  expect(wrongHash.list).toEqual([]);
  const malformed = await load(harness, { sha256: 'nothex' });
  expect(malformed.error?.code).toBe('BAD_MODEL');
});

test('too little quota is a QUOTA error before any byte is requested or written', async ({ harness }) => {
  await harness.evaluate(() => {
    // Simulate a nearly full origin for the whole page (what the store consults by default).
    navigator.storage.estimate = async () => ({ quota: 1_000_000, usage: 900_000 });
  });
  const r = await load(harness);
  expect(r.error?.code).toBe('QUOTA');
  expect(r.has).toBe(false);
  const log = (await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'));
  expect(log).toEqual([]);
  const overBudget = await load(harness, { store: { budgetBytes: 1000 } });
  expect(overBudget.error?.code).toBe('QUOTA');
});

test('after a reload the model loads from cache with zero network requests', async ({ harness }) => {
  const first = await load(harness);
  expect(first.source).toBe('network');
  await harness.reload();
  await expect(harness.locator('#status')).toHaveText('ready');
  await serverLog(harness, true);
  const seen: string[] = [];
  harness.on('request', (req) => seen.push(req.url()));
  const second = await load(harness);
  expect(second.error).toBeNull();
  expect(second.source).toBe('cache');
  expect(second.sha).toBe(real.sha256);
  expect((await serverLog(harness)).filter((l) => l.url.includes('/__e2e/') || l.url.includes('/models/'))).toEqual([]);
  expect(seen.filter((u) => u.includes('/__e2e/file') || u.includes('/models/'))).toEqual([]);
});

test('with verifyOnLoad, a cached file that fails verification on load is discarded and fetched again', async ({ harness }) => {
  await load(harness);
  await damageCachedBlob(harness, real.sha256);
  await serverLog(harness, true);
  const r = await load(harness, { store: { verifyOnLoad: true } });
  expect(r.error).toBeNull();
  expect(r.events.some((e) => e.type === 'discarded')).toBe(true);
  expect(r.source).toBe('network');
  expect(r.sha).toBe(real.sha256);
  expect((await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'))).toHaveLength(1);
});

test('an abort mid-download leaves no visible entry, and the next load resumes', async ({ harness }) => {
  const aborted = await load(harness, { query: 'delay=40', abortAfterBytes: 200_000 });
  expect(aborted.error?.code).toBe('ABORTED');
  expect(aborted.has).toBe(false);
  expect(aborted.list).toEqual([]);
  await serverLog(harness, true);
  const resumed = await load(harness);
  expect(resumed.error).toBeNull();
  expect(resumed.sha).toBe(real.sha256);
  const log = (await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'));
  expect(log[0]!.range).toMatch(/^bytes=\d+-$/);
});

test('least recently used models are evicted to stay within the byte budget', async ({ harness }) => {
  const budget = Math.floor(real.size * 1.5);
  const a = await load(harness, { id: 'model-a', store: { budgetBytes: budget } });
  expect(a.error).toBeNull();
  // Same bytes under another id would be deduplicated; use another real file for model B.
  const b = await harness.evaluate(async (budget) => {
    const { whittle } = window.harness;
    const store = await whittle.ModelStore.open({ budgetBytes: budget });
    const m = await (await fetch('/models/manifests.json')).json();
    const wap = m.models.find((x: { id: string }) => x.id === 'lyra-v2');
    const manifest = { ...wap, id: 'model-b', revision: 'test', files: wap.files.filter((f: { name: string }) => f.name === 'lyragan.tflite') };
    const events: { type: string; evicted?: string[] }[] = [];
    await store.load(manifest, { onProgress: (e) => events.push(e) });
    return { evicted: events.find((e) => e.type === 'evicted')?.evicted ?? [], list: (await store.list()).map((e) => e.key), usage: await store.usage() };
  }, budget);
  expect(b.evicted).toEqual(['model-a@test']);
  expect(b.list).toEqual(['model-b@test']);
  expect(b.usage).toBeLessThanOrEqual(budget);
});

test('Cache Storage backend works as the fallback, including reload from cache', async ({ harness }) => {
  const first = await load(harness, { store: { backend: 'cache' } });
  expect(first.error).toBeNull();
  expect(first.backend).toBe('cache');
  await serverLog(harness, true);
  const second = await load(harness, { store: { backend: 'cache' } });
  expect(second.source).toBe('cache');
  expect(second.sha).toBe(real.sha256);
  expect((await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'))).toEqual([]);
});

test('a manifest with integrity: none is size-checked, resumes across a reload, records the digest and catches damage', async ({ harness }) => {
  const lie = await load(harness, { unverified: true, size: real.size + 10 });
  expect(lie.error?.code).toBe('INTEGRITY');
  expect(lie.has).toBe(false);

  const aborted = await load(harness, { unverified: true, query: 'delay=40', abortAfterBytes: 200_000 });
  expect(aborted.error?.code).toBe('ABORTED');
  await harness.reload();
  await expect(harness.locator('#status')).toHaveText('ready');
  await serverLog(harness, true);
  const resumed = await load(harness, { unverified: true });
  expect(resumed.error).toBeNull();
  expect(resumed.sha).toBe(real.sha256);
  expect((await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'))[0]!.range).toMatch(/^bytes=\d+-$/);
  // Stored under the digest computed on the way, which later loads verify the cached copy with.
  expect(resumed.entry).toMatchObject({ integrity: 'none', files: [{ name: FILE, size: real.size, sha256: real.sha256 }] });
  await damageCachedBlob(harness, real.sha256);
  const damaged = await load(harness, { unverified: true, store: { verifyOnLoad: true } });
  expect(damaged.error).toBeNull();
  expect(damaged.events.some((e) => e.type === 'discarded')).toBe(true);
  expect(damaged.sha).toBe(real.sha256);
});

test('Cache Storage commits an unverified download under its computed digest', async ({ harness }) => {
  const first = await load(harness, { unverified: true, store: { backend: 'cache' } });
  expect(first.error).toBeNull();
  expect(first.entry?.files[0]?.sha256).toBe(real.sha256);
  await serverLog(harness, true);
  const second = await load(harness, { unverified: true, store: { backend: 'cache' } });
  expect(second.source).toBe('cache');
  expect(second.sha).toBe(real.sha256);
  expect((await serverLog(harness)).filter((l) => l.url.includes('/__e2e/file/'))).toEqual([]);
});

test('importChunks writes files as their chunks arrive, checked as written; a file that does not match leaves nothing', async ({ harness }) => {
  const tok = modelFile(MODEL, 'tok512.bin');
  const r = await harness.evaluate(
    async ({ real, tok, MODEL, FILE }) => {
      const { whittle } = window.harness;
      const store = await whittle.ModelStore.open({ name: 'import-chunks', backend: 'opfs' });
      await store.clear();
      const bytesOf = async (name: string) => new Uint8Array(await (await fetch(`/__e2e/file/${MODEL}/${name}`)).arrayBuffer());
      const files = { [FILE]: await bytesOf(FILE), 'tok512.bin': await bytesOf('tok512.bin') };
      const manifest = (over: Partial<Record<'sha' | 'size', string | number>> = {}) => ({
        id: 'chunked',
        revision: String(Math.random()),
        files: [
          { name: FILE, url: `/x/${FILE}`, size: real.size, sha256: real.sha256 },
          { name: 'tok512.bin', url: '/x/tok512.bin', size: (over.size as number) ?? tok.size, sha256: (over.sha as string) ?? tok.sha256 },
        ],
      });
      // Uneven chunks, so no chunk boundary lines up with anything.
      const chunked = (edit?: (b: Uint8Array) => Uint8Array) =>
        async function* (name: string) {
          const all = edit && name === 'tok512.bin' ? edit(files[name]!) : files[name]!;
          for (let at = 0; at < all.length; at += 100_003) yield all.subarray(at, at + 100_003);
        };
      const opfsNames = async () => {
        const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('import-chunks', { create: true });
        const names: string[] = [];
        for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
        return names.sort();
      };
      const code = async (f: () => Promise<unknown>) => f().then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
      const flipped = await code(() => store.importChunks(manifest(), chunked((b) => Uint8Array.from(b, (x, i) => (i === 3000 ? x ^ 1 : x)))));
      const afterFlip = { list: (await store.list()).length, files: await opfsNames() };
      const longer = await code(() => store.importChunks(manifest(), chunked((b) => Uint8Array.from([...b, 7]))));
      const noHash = await code(() => store.importChunks({ ...manifest(), integrity: 'none', files: manifest().files.map(({ sha256: _, ...f }) => f) }, chunked()));
      const good = manifest();
      const key = await store.importChunks(good, chunked());
      const loaded = await store.load(good);
      const back = new Uint8Array(await loaded.files.get('tok512.bin')!.arrayBuffer());
      return { flipped, afterFlip, longer, noHash, key, source: loaded.source, same: back.every((x, i) => x === files['tok512.bin']![i]), files: await opfsNames() };
    },
    { real, tok, MODEL, FILE },
  );
  expect(r.flipped).toMatch(/^INTEGRITY: .*tok512\.bin has sha256/);
  expect(r.afterFlip).toEqual({ list: 0, files: [] }); // the first file's committed blob went too
  expect(r.longer).toMatch(/^INTEGRITY: .*tok512\.bin has more than/);
  expect(r.noHash).toMatch(/^INVALID_ARGUMENT: .*has no sha256/);
  expect(r.key).toMatch(/^chunked@/);
  expect(r.source).toBe('cache');
  expect(r.same).toBe(true);
  expect(r.files).toEqual([real.sha256, tok.sha256].sort());
});

test('putDerivedStream writes bytes of unknown digest as they arrive and commits them under it; short, long or aborted streams leave nothing', async ({ harness }) => {
  const tok = modelFile(MODEL, 'tok512.bin');
  const r = await harness.evaluate(
    async ({ tok, MODEL, FILE }) => {
      const { whittle } = window.harness;
      const store = await whittle.ModelStore.open({ name: 'derived-stream', backend: 'opfs' });
      await store.clear();
      const bytes = new Uint8Array(await (await fetch(`/__e2e/file/${MODEL}/${FILE}`)).arrayBuffer());
      const source = { id: 'src', revision: 'r1', files: [{ name: 'tok512.bin', url: `/__e2e/file/${MODEL}/tok512.bin`, size: tok.size, sha256: tok.sha256 }] };
      await store.load(source);
      const derived = (rev: string) => ({ id: 'src#derived', revision: rev, derivedFrom: { id: 'src', revision: 'r1', variant: 'derived' } });
      // Uneven chunks, made as the stream is read (as a worker's would be).
      async function* chunks(of: Uint8Array, signal?: AbortController) {
        for (let at = 0; at < of.length; at += 70_001) {
          if (signal && at > 140_000) signal.abort();
          yield of.slice(at, at + 70_001);
        }
      }
      const opfsNames = async () => {
        const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('derived-stream', { create: true });
        const names: string[] = [];
        for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
        return names.sort();
      };
      const code = async (f: () => Promise<unknown>) => f().then(() => 'ok', (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`);
      const shared = [{ name: 'tok512.bin', sha256: tok.sha256, size: tok.size }];
      const short = await code(() => store.putDerivedStream(derived('a'), { name: 'x.bin', size: bytes.length + 1, chunks: chunks(bytes) }, shared));
      const long = await code(() => store.putDerivedStream(derived('b'), { name: 'x.bin', size: bytes.length - 1, chunks: chunks(bytes) }, shared));
      const ac = new AbortController();
      const aborted = await code(() => store.putDerivedStream(derived('c'), { name: 'x.bin', size: bytes.length, chunks: chunks(bytes, ac) }, shared, { signal: ac.signal }));
      const missingShared = await code(() => store.putDerivedStream(derived('d'), { name: 'x.bin', size: bytes.length, chunks: chunks(bytes) }, [{ name: 'nope', sha256: '0'.repeat(64), size: 3 }]));
      const afterFailures = { list: (await store.list()).map((e) => e.id), files: await opfsNames() };
      const manifest = await store.putDerivedStream(derived('e'), { name: 'x.bin', size: bytes.length, chunks: chunks(bytes) }, shared);
      const loaded = await store.loadCached(manifest);
      const back = new Uint8Array(await loaded!.files.get('x.bin')!.arrayBuffer());
      return { short, long, aborted, missingShared, afterFailures, files: manifest.files, same: back.length === bytes.length && back.every((x, i) => x === bytes[i]), opfs: await opfsNames() };
    },
    { tok, MODEL, FILE },
  );
  expect(r.short).toMatch(/^INTEGRITY: .*ended at/);
  expect(r.long).toMatch(/^INTEGRITY: .*runs past/);
  expect(r.aborted).toMatch(/^ABORTED/);
  expect(r.missingShared).toMatch(/^STORAGE: .*not in the store/);
  // Nothing half-written: only the source's entry and blob.
  expect(r.afterFailures).toEqual({ list: ['src'], files: [tok.sha256] });
  // Committed under the digest of what arrived: the checkpoint's own sha256.
  expect(r.files).toEqual([{ name: 'x.bin', size: real.size, sha256: real.sha256, url: `derived:${real.sha256}` }, { name: 'tok512.bin', size: tok.size, sha256: tok.sha256, url: `derived:${tok.sha256}` }]);
  expect(r.same).toBe(true);
  expect(r.opfs).toEqual([real.sha256, tok.sha256].sort());
});

test('Cache Storage: a stream longer than what it holds in JS (folded into a Blob every 16 MiB) is stored whole and under its digest', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const store = await whittle.ModelStore.open({ name: 'derived-stream-cache', backend: 'cache' });
    await store.clear();
    // 40 MiB of deterministic bytes, in uneven chunks: two folds and a remainder.
    const size = 40 * 2 ** 20 + 12_345;
    const bytes = new Uint8Array(size);
    let x = 1;
    for (let i = 0; i < size; i++) bytes[i] = (x = (x * 1103515245 + 12345) >>> 0) >>> 24;
    async function* chunks() {
      for (let at = 0; at < size; at += 3_000_017) yield bytes.slice(at, at + 3_000_017);
    }
    const expected = Array.from(new Uint8Array(await crypto.subtle.digest('SHA-256', bytes)), (b) => b.toString(16).padStart(2, '0')).join('');
    const manifest = await store.putDerivedStream({ id: 'big#derived', revision: 'r1', derivedFrom: { id: 'big', revision: 'r1', variant: 'derived' } }, { name: 'x.bin', size, chunks: chunks() }, []);
    const loaded = await store.loadCached(manifest);
    const back = new Uint8Array(await loaded!.files.get('x.bin')!.arrayBuffer());
    let same = back.length === size;
    for (let i = 0; same && i < size; i++) same = back[i] === bytes[i];
    return { sha: manifest.files[0]!.sha256, expected, same };
  });
  expect(r.sha).toBe(r.expected);
  expect(r.same).toBe(true);
});
