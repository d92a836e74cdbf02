/**
 * The model store's OPFS folder ('whittle') as the e2e specs look into it from a page of the
 * app's origin, beside the SDK: what files it holds, and damage done to a stored file the way a
 * disk error or another script of the origin would do it (the store must notice).
 */
import type { Page } from '@playwright/test';

/** The names in the store's OPFS folder (committed blobs, partial segments, anything). */
export function opfsNames(page: Page): Promise<string[]> {
  return page.evaluate(async () => {
    const root = await navigator.storage.getDirectory();
    const dir = await root.getDirectoryHandle('whittle', { create: true });
    const names: string[] = [];
    for await (const name of (dir as unknown as { keys(): AsyncIterable<string> }).keys()) names.push(name);
    return names.sort();
  });
}

/** Damages the stored blob of `sha256`: `flip` one byte in its middle (same size), or `truncate` it there. Returns its new size. */
export function damageStoredFile(page: Page, sha256: string, how: 'flip' | 'truncate'): Promise<number> {
  return page.evaluate(
    async ({ sha256, how }) => {
      const dir = await (await navigator.storage.getDirectory()).getDirectoryHandle('whittle');
      const handle = await dir.getFileHandle(sha256);
      const size = (await handle.getFile()).size;
      const at = Math.floor(size / 2);
      const byte = new Uint8Array(await (await handle.getFile()).slice(at, at + 1).arrayBuffer())[0]!;
      const w = await handle.createWritable({ keepExistingData: true });
      if (how === 'flip') await w.write({ type: 'write', position: at, data: new Uint8Array([byte ^ 0x40]) });
      else await w.truncate(at);
      await w.close();
      return (await handle.getFile()).size;
    },
    { sha256, how },
  );
}
