/**
 * The files `seedModelCache` hands to the page, answered by Playwright itself (`page.route`) on a
 * path of the app's origin that no app serves, a chunk at a time, read from the test runner's
 * disk as the page asks: the page writes each chunk into the store as it arrives, so a multi-GB
 * model never passes through `page.evaluate` arguments (decoded byte by byte in page JS before)
 * nor sits whole in either process's memory, and no request reaches the app's server.
 *
 * Why not a loopback server of its own: Chromium's Local Network Access checks refuse a page
 * answered by Playwright (no remote address, so "public") any fetch to a loopback address.
 *
 * @example
 * const route = await routeSeedFiles(page, origin, [{ name: 'tok512.bin', path: '/abs/tok512.bin', size: 6227 }]);
 * // the page: fetch(route.sources['tok512.bin'].chunks[0]) ...
 * await route.close();
 */
import type { Page, Route } from '@playwright/test';
import { open } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import type { SeedSourceFile } from './page-helpers.ts';

/** Bytes per answered request: each travels as one protocol message (base64-encoded). */
export const SEED_CHUNK_BYTES = 16 << 20;

export interface SeedRoute {
  /** Each file's chunk URLs, in order. */
  sources: Record<string, SeedSourceFile>;
  close(): Promise<void>;
}

export async function routeSeedFiles(page: Page, origin: string, files: readonly { name: string; path: string; size: number }[]): Promise<SeedRoute> {
  // A fresh random prefix per seeding: nothing else on the page can guess or reuse it.
  const prefix = new URL(`/__whittle_playwright__/seed/${randomBytes(12).toString('hex')}/`, origin).href;
  const pattern = `${prefix}**`;
  const handler = async (route: Route) => {
    // <file index>/<chunk index>: a file's name (any character) never has to survive a URL.
    const m = /^(\d+)\/(\d+)$/.exec(route.request().url().slice(prefix.length));
    const file = m ? files[Number(m[1])] : undefined;
    const begin = m ? Number(m[2]) * SEED_CHUNK_BYTES : 0;
    if (!file || begin > file.size) return route.fulfill({ status: 404, body: '' });
    const length = Math.min(SEED_CHUNK_BYTES, file.size - begin);
    const body = Buffer.alloc(length);
    const handle = await open(file.path, 'r');
    try {
      await handle.read(body, 0, length, begin);
    } finally {
      await handle.close();
    }
    return route.fulfill({ status: 200, contentType: 'application/octet-stream', body });
  };
  await page.route(pattern, handler);
  const sources = Object.fromEntries(
    files.map((f, i) => [f.name, { chunks: Array.from({ length: Math.max(1, Math.ceil(f.size / SEED_CHUNK_BYTES)) }, (_, k) => `${prefix}${i}/${k}`) }]),
  );
  return { sources, close: () => page.unroute(pattern, handler) };
}
