/**
 * fileSha256: the digest of a file on disk, read as a stream, computed once per version of the
 * file (path, size, modification time) and again when the file changes.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { fileSha256 } from './file-digest.ts';

const dir = mkdtempSync(join(tmpdir(), 'whittle-digest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

it("hashes a file larger than one stream chunk to node:crypto's digest of its bytes", async () => {
  // 3 MiB + 7 of a deterministic pattern: several of createReadStream's 64 KiB chunks and a ragged end.
  const bytes = Uint8Array.from({ length: (3 << 20) + 7 }, (_, i) => (i * 31 + 7) & 0xff);
  const path = join(dir, 'shard.bin');
  writeFileSync(path, bytes);
  expect(await fileSha256(path)).toBe(sha256(bytes));
});

it('a rewritten file is hashed again, even at the same size', async () => {
  const path = join(dir, 'tok.bin');
  writeFileSync(path, Uint8Array.from([1, 2, 3, 4]));
  utimesSync(path, 1_000, 1_000);
  expect(await fileSha256(path)).toBe(sha256(Uint8Array.from([1, 2, 3, 4])));
  writeFileSync(path, Uint8Array.from([1, 2, 3, 5]));
  utimesSync(path, 2_000, 2_000);
  expect(await fileSha256(path)).toBe(sha256(Uint8Array.from([1, 2, 3, 5])));
});

it('a missing file rejects, and is read again once it exists', async () => {
  const path = join(dir, 'later.bin');
  await expect(fileSha256(path)).rejects.toThrow(/ENOENT/);
  writeFileSync(path, Uint8Array.from([9]));
  expect(await fileSha256(path)).toBe(sha256(Uint8Array.from([9])));
});
