/**
 * The model store under concurrency and hostile servers, in a real Chromium (OPFS, IndexedDB,
 * Web Locks): two pages loading one model at once, eviction while a model is in use, the I/O a
 * resumable download costs, servers that answer a Range request with the wrong bytes, gzip, and
 * which thread reads cached bytes. Faults come from e2e/fixture-server.ts.
 */
import { createHash } from 'node:crypto';
import type { Page } from '@playwright/test';
import type { ModelManifest } from 'whittle';
import { test, expect, serverLog, modelFile } from './fixtures.ts';
import { synthBytes } from './fixture-server.ts';

const MODEL = 'stories260K';
const FILE = 'stories260K.bin';
const real = modelFile(MODEL, FILE);

test.skip(({ whittleBackend }) => whittleBackend.backend !== 'wasm', 'store behaviour does not depend on the backend');

interface FileLoad {
  /** Fixture URL of the file, without the query. */
  url?: string;
  query?: string;
  size?: number;
  sha256?: string;
  store?: Record<string, unknown>;
  /** How many loads of the same manifest to run at once in this page. */
  concurrent?: number;
}

/** Loads a one-file manifest with ModelStore.load in `page`; returns each load's outcome. */
async function loadFile(page: Page, f: FileLoad = {}) {
  return page.evaluate(
    async ({ f, real, MODEL, FILE }) => {
      const { whittle } = window.harness;
      const token = Math.random().toString(36).slice(2);
      const manifest = {
        id: 'faults',
        revision: 'test',
        files: [{ name: FILE, url: `${f.url ?? `/__e2e/file/${MODEL}/${FILE}`}?t=${token}&${f.query ?? ''}`, size: f.size ?? real.size, sha256: f.sha256 ?? real.sha256 }],
      };
      const one = async () => {
        const store = await whittle.ModelStore.open({ retryDelayMs: 20, ...(f.store ?? {}) });
        const events: { type: string; [k: string]: unknown }[] = [];
        try {
          const loaded = await store.load(manifest, { onProgress: (e) => events.push(e) });
          const bytes = await loaded.files.get(FILE)!.arrayBuffer();
          const sha = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))].map((b) => b.toString(16).padStart(2, '0')).join('');
          return { error: null, source: loaded.source, sha, events, has: await store.has('faults', 'test') };
        } catch (e) {
          const err = e as { code?: string; message?: string };
          return { error: { code: err.code ?? 'not-a-WhittleError', message: err.message ?? String(e) }, source: null, sha: null, events, has: await store.has('faults', 'test') };
        }
      };
      return Promise.all(Array.from({ length: f.concurrent ?? 1 }, one));
    },
    { f, real, MODEL, FILE },
  );
}

const fileGets = async (page: Page) => (await serverLog(page)).filter((l) => /\/__e2e\/(file|synth)\//.test(l.url));

test.beforeEach(async ({ harness }) => {
  await serverLog(harness, true);
});

test.describe('one download per blob (Web Locks)', () => {
  test('two pages loading one model at once: both succeed, the file is downloaded once, the cached bytes verify', async ({ harness, context }) => {
    const other = await context.newPage();
    await other.goto('/e2e/pages/harness.html');
    await expect(other.locator('#status')).toHaveText('ready');
    // 64 KiB every 20 ms: the first download is still running when the second page asks.
    const [[a], [b]] = await Promise.all([loadFile(harness, { query: 'delay=20' }), loadFile(other, { query: 'delay=20' })]);
    expect(a!.error).toBeNull();
    expect(b!.error).toBeNull();
    expect(a!.sha).toBe(real.sha256);
    expect(b!.sha).toBe(real.sha256);
    expect(await fileGets(harness)).toHaveLength(1);
    const [again] = await loadFile(other, { store: { verifyOnLoad: true } });
    expect(again).toMatchObject({ error: null, source: 'cache', sha: real.sha256 });
    await other.close();
  });

  test('two loads of one model at once in one page download it once', async ({ harness }) => {
    const [a, b] = await loadFile(harness, { query: 'delay=20', concurrent: 2 });
    expect(a).toMatchObject({ error: null, sha: real.sha256, has: true });
    expect(b).toMatchObject({ error: null, sha: real.sha256, has: true });
    expect(await fileGets(harness)).toHaveLength(1);
  });
});

test('a model in use is pinned: eviction refuses with QUOTA, its worker respawns from intact files, dispose unpins', async ({ harness }) => {
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const manifests = (await (await fetch('/models/manifests.json')).json()).models as ModelManifest[];
    const a = manifests.find((m) => m.id === 'stories260K')!;
    const lyra = manifests.find((m) => m.id === 'lyra-v2')!;
    const b = { ...lyra, id: 'pin-b', revision: 'test', files: lyra.files.filter((f) => f.name === 'lyragan.tflite') };
    const bytes = (m: { files: { size: number }[] }) => m.files.reduce((s, f) => s + f.size, 0);
    // Room for either model, not for both: loading B must evict A.
    const budget = Math.max(bytes(a), bytes(b)) + 1000;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'pin-e2e', budgetBytes: budget });
    await w.store.clear();
    const head = await w.headModel('stories260K');
    const before = await head.logits([1, 403]);
    const code = (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message });
    const whileInUse = await w.store.load(b).then(() => null, code);
    // Kill A's worker mid-call (as e2e/worker.spec.ts does); the next call respawns it, which
    // re-reads A's files from the store.
    const worker = await head.worker();
    const pending = head.logits([1, 403, 407]);
    worker.terminate();
    const died = await pending.then(() => null, code);
    const after = await head.logits([1, 403]).then((v) => Array.from(v), code);
    head.dispose();
    const events: { type: string; evicted?: string[] }[] = [];
    const afterDispose = await w.store.load(b, { onProgress: (e) => events.push(e) }).then(() => null, code);
    return { whileInUse, died, same: Array.isArray(after) && Array.from(before).every((v, i) => v === after[i]), after: Array.isArray(after) ? null : after, afterDispose, evicted: events.find((e) => e.type === 'evicted')?.evicted ?? [], list: (await w.store.list()).map((e) => e.key) };
  });
  expect(r.whileInUse?.code).toBe('QUOTA');
  expect(r.whileInUse?.message).toContain('in use');
  expect(r.died?.code).toBe('WORKER_DIED');
  expect(r.after).toBeNull();
  expect(r.same).toBe(true);
  expect(r.afterDispose).toBeNull();
  expect(r.evicted).toHaveLength(1);
  expect(r.list).toEqual(['pin-b@test']);
});

test('a resumed download of a 32 MiB file writes each byte at most twice (no copy of the partial per checkpoint)', async ({ harness }) => {
  const size = 32 << 20;
  const sha256 = createHash('sha256').update(synthBytes(size)).digest('hex');
  // Count what reaches OPFS: bytes written, plus the whole existing file that createWritable
  // copies into its swap file when asked to keep existing data.
  await harness.evaluate(() => {
    const io = { written: 0, copied: 0 };
    (window as unknown as { io: typeof io }).io = io;
    const create = FileSystemFileHandle.prototype.createWritable;
    FileSystemFileHandle.prototype.createWritable = async function (this: FileSystemFileHandle, opts?: FileSystemCreateWritableOptions) {
      if (opts?.keepExistingData) io.copied += (await this.getFile()).size;
      return create.call(this, opts);
    };
    const write = FileSystemWritableFileStream.prototype.write;
    FileSystemWritableFileStream.prototype.write = function (this: FileSystemWritableFileStream, data: FileSystemWriteChunkType) {
      const d = (data as { type?: string; data?: unknown }).type === 'write' ? (data as { data: unknown }).data : data;
      io.written += d instanceof Blob ? d.size : ArrayBuffer.isView(d) ? d.byteLength : d instanceof ArrayBuffer ? d.byteLength : 0;
      return write.call(this, data);
    };
  });
  const [r] = await loadFile(harness, { url: `/__e2e/synth/${size}.bin`, query: `cut=${20 << 20}`, size, sha256 });
  expect(r!.error).toBeNull();
  expect(r!.sha).toBe(sha256);
  expect(r!.events.some((e) => e.type === 'retry')).toBe(true);
  expect((await fileGets(harness)).map((l) => l.status)).toEqual([200, 206]);
  const io = await harness.evaluate(() => (window as unknown as { io: { written: number; copied: number } }).io);
  // Linear: the download writes the file once and commit joins its segments once (2x); the old
  // close + reopen every 4 MiB copied 4 + 8 + ... + 28 MiB on top (4.5x here, growing with size).
  expect(io.copied).toBe(0);
  expect(io.written + io.copied).toBeLessThanOrEqual(2 * size);
});

test.describe('a response that is not the bytes asked for is never written', () => {
  test('a 416 (with an HTML body) for a satisfiable resume: the partial is dropped and the file fetched again from byte 0', async ({ harness }) => {
    const [r] = await loadFile(harness, { query: 'cut=400000&lie416=1' });
    expect(r!.error).toBeNull();
    expect(r!.sha).toBe(real.sha256);
    const log = await fileGets(harness);
    expect(log.map((l) => [l.status, l.range === null ? null : 'ranged'])).toEqual([
      [200, null],
      [416, 'ranged'],
      [200, null],
    ]);
  });

  test('a 206 for another range than asked: the partial is dropped and the file fetched again from byte 0', async ({ harness }) => {
    const [r] = await loadFile(harness, { query: 'cut=400000&badRange=1000' });
    expect(r!.error).toBeNull();
    expect(r!.sha).toBe(real.sha256);
    expect((await fileGets(harness)).map((l) => l.status)).toEqual([200, 206, 200]);
  });

  test('a server that answers the whole-file request with the wrong range too is a NETWORK error, once, and caches nothing', async ({ harness }) => {
    const [r] = await loadFile(harness, { query: 'badRangeAll=1000' });
    expect(r!.error?.code).toBe('NETWORK');
    expect(r!.error?.message).toContain('Content-Range');
    expect(r!.has).toBe(false);
    expect((await fileGets(harness)).map((l) => l.status)).toEqual([206, 206]);
  });
});

test('a gzip-encoded response (Content-Length of the compressed body) loads and verifies', async ({ harness }) => {
  const [r] = await loadFile(harness, { query: 'gzip=1' });
  expect(r!.error).toBeNull();
  expect(r!.sha).toBe(real.sha256);
  expect(r!.source).toBe('network');
});

test('loading a cached model reads none of its bytes on the main thread (no sha256 there); verifyOnLoad: true still re-hashes', async ({ harness }) => {
  const [first] = await loadFile(harness);
  expect(first!.source).toBe('network');
  // Every way page code can read a Blob's bytes, counted while the store loads from cache.
  const readsDuring = (store: Record<string, unknown>) =>
    harness.evaluate(
      async ({ store, real, MODEL, FILE }) => {
        const { whittle } = window.harness;
        let reads = 0;
        const methods = ['arrayBuffer', 'text', 'stream', 'bytes'] as const;
        const saved = methods.map((m) => [m, (Blob.prototype as unknown as Record<string, unknown>)[m]] as const);
        for (const [m, fn] of saved) {
          if (typeof fn !== 'function') continue;
          (Blob.prototype as unknown as Record<string, unknown>)[m] = function (this: Blob, ...args: unknown[]) {
            reads++;
            return (fn as (...a: unknown[]) => unknown).apply(this, args);
          };
        }
        try {
          const s = await whittle.ModelStore.open(store);
          const loaded = await s.load({ id: 'faults', revision: 'test', files: [{ name: FILE, url: `/__e2e/file/${MODEL}/${FILE}`, size: real.size, sha256: real.sha256 }] });
          return { reads, source: loaded.source };
        } finally {
          for (const [m, fn] of saved) (Blob.prototype as unknown as Record<string, unknown>)[m] = fn;
        }
      },
      { store, real, MODEL, FILE },
    );
  expect(await readsDuring({})).toEqual({ reads: 0, source: 'cache' });
  const asked = await readsDuring({ verifyOnLoad: true });
  expect(asked.source).toBe('cache');
  expect(asked.reads).toBeGreaterThan(0);
  expect(await fileGets(harness)).toHaveLength(1);
});
