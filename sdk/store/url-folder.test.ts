/**
 * Resolving a model folder at a URL against a real HTTP server (Node): discovery of sharded
 * folders, whittle.json, the explicit choice to load unverified files, typed errors, and no
 * request at all for a cached folder.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { reshardHfFolder } from '../../models/import/hf/testing/folder.ts';
import { WhittleError } from '../../core/errors.ts';
import type { CacheEntry } from './meta.ts';
import { serveFolder, type ServedFolder } from './testing/serve-folder.ts';
import { folderLocation, isModelUrl, resolveUrlFolder } from './url-folder.ts';

const original = Object.fromEntries(['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'].map((n) => [n, readLocalModelFile('stories-layerskip', n)]));
const sharded = reshardHfFolder(original, { dtype: 'BF16', shards: 2 });
const sha = (b: ArrayBuffer) => createHash('sha256').update(new Uint8Array(b)).digest('hex');
const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;
const whittleJson = (files: Record<string, ArrayBuffer>, extra: Record<string, unknown> = {}) =>
  json({ whittle: 1, ...extra, files: Object.entries(files).map(([name, b]) => ({ name, size: b.byteLength, sha256: sha(b) })) });

async function rejects(p: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  const err = await p.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(WhittleError);
  expect((err as WhittleError).code).toBe(code);
  expect((err as WhittleError).message).toMatch(message);
}

let plain: ServedFolder;
let published: ServedFolder;
beforeAll(async () => {
  plain = await serveFolder(sharded);
  published = await serveFolder({ ...original, 'whittle.json': whittleJson(original, { revision: 'r7', license: 'MIT' }) }, { headAllowed: false });
});
afterAll(async () => {
  await plain.close();
  await published.close();
});

describe('model folders by URL', () => {
  it('tells URLs from registry ids, and keys the cache by the folder URL without its query', () => {
    for (const u of ['https://h/m/', 'http://h/m', '/models/m/', './m/', '../m/', 'models/m/']) expect(isModelUrl(u)).toBe(true);
    for (const id of ['stories260K', 'lyra-v2', 'stories-layerskip']) expect(isModelUrl(id)).toBe(false);
    const loc = folderLocation('../m/smol?token=abc#x', 'https://host/app/page.html');
    expect(loc.id).toBe('https://host/m/smol/');
    expect(loc.fileUrl('model-00001-of-00002.safetensors')).toBe('https://host/m/smol/model-00001-of-00002.safetensors?token=abc');
    expect(() => folderLocation('/m/')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(() => folderLocation('file:///etc/')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });

  it('refuses a folder nothing verifies unless the caller says integrity: none, after one request', async () => {
    plain.requests.length = 0;
    await rejects(resolveUrlFolder(plain.url), 'INVALID_ARGUMENT', /integrity: 'none'/);
    expect(plain.requests.map((r) => r.path)).toEqual(['/models/folder/whittle.json']);
  });

  it("discovers a sharded folder's files and sizes (integrity: none), skipping absent optional files", async () => {
    const m = await resolveUrlFolder({ url: plain.url, integrity: 'none' });
    expect(m.id).toBe(plain.url);
    expect(m.integrity).toBe('none');
    expect(m.revision).toMatch(/^http-[0-9a-f]{16}$/); // from the ETags
    expect(Object.fromEntries(m.files.map((f) => [f.name, f.size]))).toEqual(Object.fromEntries(Object.entries(sharded).map(([n, b]) => [n, b.byteLength])));
    expect(m.files.every((f) => f.sha256 === undefined && f.url === `${plain.url}${f.name}`)).toBe(true);
    expect(plain.requests.some((r) => r.path.endsWith('generation_config.json') && r.status === 404)).toBe(true);
  });

  it('verifies with the sha256s a caller gives, and needs one for every file', async () => {
    const all = Object.fromEntries(Object.entries(sharded).map(([n, b]) => [n, sha(b)]));
    const m = await resolveUrlFolder({ url: plain.url, sha256: all });
    expect(m.integrity).toBeUndefined();
    expect(m.files.every((f) => f.sha256 === all[f.name])).toBe(true);
    const { 'tokenizer.json': _, ...some } = all;
    await rejects(resolveUrlFolder({ url: plain.url, sha256: some }), 'INVALID_ARGUMENT', /no sha256 for tokenizer\.json/);
    await rejects(resolveUrlFolder({ url: plain.url, sha256: { 'config.json': 'nothex' } }), 'INVALID_ARGUMENT', /64 lowercase hex/);
  });

  it("uses a publisher's whittle.json (sizes, sha256s, revision), where HEAD is refused", async () => {
    published.requests.length = 0;
    const m = await resolveUrlFolder(published.url);
    expect(m).toMatchObject({ id: published.url, revision: 'r7', license: 'MIT' });
    expect(m.integrity).toBeUndefined();
    expect(m.files.map((f) => [f.name, f.size, f.sha256])).toEqual(Object.entries(original).map(([n, b]) => [n, b.byteLength, sha(b)]));
    expect(published.requests.map((r) => r.path)).toEqual(['/models/folder/whittle.json']);
    await rejects(resolveUrlFolder({ url: published.url, sha256: { 'config.json': 'a'.repeat(64) } }), 'INTEGRITY', /whittle\.json gives config\.json/);
  });

  it('finds sizes with a one-byte range where HEAD is refused', async () => {
    const noHead = await serveFolder(original, { headAllowed: false });
    try {
      const m = await resolveUrlFolder({ url: noHead.url, integrity: 'none', files: ['config.json', 'model.safetensors', 'tokenizer.json'] });
      expect(m.files.map((f) => f.size)).toEqual([original['config.json']!.byteLength, original['model.safetensors']!.byteLength, original['tokenizer.json']!.byteLength]);
      expect(m.revision).toMatch(/^http-/);
    } finally {
      await noHead.close();
    }
  });

  it('gives typed errors for a missing required file, a hostile index and a bad whittle.json', async () => {
    const { 'tokenizer.json': _, ...noTokenizer } = sharded;
    const hostileIndex = { ...original, 'model.safetensors.index.json': json({ weight_map: { 'model.norm.weight': '../../secret' } }) };
    const badManifest = { ...original, 'whittle.json': json({ whittle: 1, files: [{ name: 'https://evil.example/x', size: 1, sha256: 'a'.repeat(64) }] }) };
    for (const [files, code, message] of [
      [noTokenizer, 'BAD_MODEL', /tokenizer\.json is missing \(HTTP 404/],
      [hostileIndex, 'BAD_MODEL', /not a plain relative file name/],
      [badManifest, 'BAD_MODEL', /whittle\.json: files\[0\]\.name/],
    ] as const) {
      const s = await serveFolder(files);
      try {
        await rejects(resolveUrlFolder({ url: s.url, integrity: 'none' }), code, message);
      } finally {
        await s.close();
      }
    }
    await rejects(resolveUrlFolder({ url: 'http://127.0.0.1:9/m/', integrity: 'none' }), 'NETWORK', /whittle\.json/);
  });

  it('resolves a cached folder with no request, and an unverified one only with integrity: none again', async () => {
    const entry: CacheEntry = {
      key: `${plain.url}@http-x`, id: plain.url, revision: 'http-x', integrity: 'none', bytes: 1, createdAt: 0, lastUsed: 0,
      files: Object.entries(sharded).map(([name, b]) => ({ name, size: b.byteLength, sha256: sha(b) })),
    };
    const cached = async (id: string, revision?: string) => (id === entry.id && (revision === undefined || revision === entry.revision) ? entry : undefined);
    plain.requests.length = 0;
    const m = await resolveUrlFolder({ url: `${plain.url}?sig=1`, integrity: 'none' }, { cached });
    expect(m).toMatchObject({ id: plain.url, revision: 'http-x', integrity: 'none' });
    expect(m.files.find((f) => f.name === 'config.json')?.url).toBe(`${plain.url}config.json?sig=1`);
    await rejects(resolveUrlFolder(plain.url, { cached }), 'INVALID_ARGUMENT', /integrity: 'none'/);
    // The caller's sha256s for every file verify the cached copy: no need to accept anything.
    const verified = await resolveUrlFolder({ url: plain.url, sha256: Object.fromEntries(entry.files.map((f) => [f.name, f.sha256])) }, { cached });
    expect(verified.integrity).toBeUndefined();
    expect(plain.requests).toEqual([]);
    // Another revision is another entry: that one goes to the network.
    await resolveUrlFolder({ url: plain.url, integrity: 'none', revision: 'v2' }, { cached });
    expect(plain.requests.length).toBeGreaterThan(0);
  });

  it('discovers the decoded sizes of a folder served gzip-encoded (Content-Length counts compressed bytes)', async () => {
    const gz = await serveFolder(original, { gzip: true });
    try {
      const m = await resolveUrlFolder({ url: gz.url, integrity: 'none' });
      expect(Object.fromEntries(m.files.map((f) => [f.name, f.size]))).toEqual(Object.fromEntries(Object.entries(original).map(([n, b]) => [n, b.byteLength])));
    } finally {
      await gz.close();
    }
  });

  it('on a single-page-app host (unknown paths answer index.html with a 200) absent optional files are absent, a missing required one is named', async () => {
    const spa = await serveFolder(sharded, { spaFallback: true });
    const withoutConfig = await serveFolder(Object.fromEntries(Object.entries(sharded).filter(([n]) => n !== 'config.json')), { spaFallback: true });
    try {
      const m = await resolveUrlFolder({ url: spa.url, integrity: 'none' });
      expect(m.files.map((f) => f.name).sort()).toEqual(Object.keys(sharded).sort());
      await rejects(resolveUrlFolder({ url: withoutConfig.url, integrity: 'none' }), 'BAD_MODEL', /config\.json is missing.*HTML page/);
    } finally {
      await spa.close();
      await withoutConfig.close();
    }
  });

  it('a whole-folder load is not answered by an entry cached from a files subset', async () => {
    const subset: CacheEntry = {
      key: `${plain.url}@http-x`, id: plain.url, revision: 'http-x', integrity: 'none', bytes: 1, createdAt: 0, lastUsed: 0,
      files: [{ name: 'tokenizer.json', size: sharded['tokenizer.json']!.byteLength, sha256: sha(sharded['tokenizer.json']!) }],
    };
    const cached = async (id: string) => (id === subset.id ? subset : undefined);
    plain.requests.length = 0;
    const m = await resolveUrlFolder({ url: plain.url, integrity: 'none' }, { cached });
    expect(m.files.map((f) => f.name).sort()).toEqual(Object.keys(sharded).sort());
    expect(plain.requests.length).toBeGreaterThan(0);
    // The same subset asked for again is served from the entry, with no request.
    plain.requests.length = 0;
    const again = await resolveUrlFolder({ url: plain.url, files: ['tokenizer.json'], integrity: 'none' }, { cached });
    expect(again.files.map((f) => f.name)).toEqual(['tokenizer.json']);
    expect(plain.requests).toEqual([]);
  });
});
