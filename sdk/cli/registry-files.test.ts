/**
 * The installed CLI's registry downloads: verified into the user cache, against a real local
 * HTTP server standing in for the upstream host.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RegistryModel } from '../../models/registry.ts';
import { serveFolder, type ServedFolder } from '../store/testing/serve-folder.ts';
import { ensureRegistryModel, presentDir } from './registry-files.ts';

const cache = mkdtempSync(join(tmpdir(), 'whittle-cache-'));
const body = new TextEncoder().encode('a model file'.repeat(1000));
const sha = createHash('sha256').update(body).digest('hex');
let server: ServedFolder;

beforeAll(async () => {
  process.env.WHITTLE_CACHE_DIR = cache;
  server = await serveFolder({ 'weights.bin': body.buffer as ArrayBuffer });
});
afterAll(async () => {
  await server.close();
  delete process.env.WHITTLE_CACHE_DIR;
  rmSync(cache, { recursive: true, force: true });
});

const model = (file: Partial<RegistryModel['files'][number]>): RegistryModel => ({
  id: 'upstream-test',
  revision: 'r@1',
  kind: 'text',
  format: 'llama2c',
  license: 'MIT',
  description: 'test',
  files: [{ name: 'weights.bin', size: body.length, sha256: sha, url: `${server.url}weights.bin`, ...file }],
});

describe('registry models for an installed CLI', () => {
  it('downloads a missing model once into the cache, verified; the second call makes no request', async () => {
    const m = model({});
    expect(presentDir(m)).toBeNull();
    const dir = await ensureRegistryModel(m, () => {});
    expect(dir.startsWith(cache)).toBe(true);
    expect(new Uint8Array(readFileSync(join(dir, 'weights.bin')))).toEqual(body);
    const requests = server.requests.length;
    expect(await ensureRegistryModel(m, () => {})).toBe(dir);
    expect(server.requests.length).toBe(requests);
  });

  it('refuses bytes whose hash or size differ from the registry and leaves nothing behind', async () => {
    rmSync(join(cache, 'models'), { recursive: true, force: true });
    await expect(ensureRegistryModel(model({ sha256: '0'.repeat(64) }), () => {})).rejects.toMatchObject({ code: 'INTEGRITY' });
    await expect(ensureRegistryModel(model({ size: body.length - 1 }), () => {})).rejects.toMatchObject({ code: 'INTEGRITY' });
    const dir = join(cache, 'models', 'upstream-test');
    const left = existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).filter((f) => f.includes('weights.bin')) : [];
    expect(left).toEqual([]);
  });

  it('a project model without an upstream URL is a typed error, a dead host a NETWORK error', async () => {
    await expect(ensureRegistryModel(model({ url: undefined }), () => {})).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(ensureRegistryModel(model({ url: `${server.url}missing.bin` }), () => {})).rejects.toMatchObject({ code: 'NETWORK' });
  });
});
