/**
 * The sha256 of a file on the test runner's disk, read as a stream (a model's shards need not fit
 * in memory), computed once per file version per worker process: every test of a worker seeds the
 * same model, and a multi-GB folder takes seconds to hash. A version is the path with its size
 * and modification time, so a file rewritten on disk is hashed again.
 *
 * @example
 * const digest = await fileSha256('public/models/stories260K/tok512.bin'); // 64 hex digits
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';

const digests = new Map<string, Promise<string>>();

export async function fileSha256(path: string): Promise<string> {
  const absolute = resolve(path);
  const { size, mtimeMs } = await stat(absolute);
  const version = JSON.stringify([absolute, size, mtimeMs]);
  let digest = digests.get(version);
  if (!digest) {
    digest = hashFile(absolute);
    digests.set(version, digest);
    // A read that failed is not remembered: the next call reads again.
    digest.catch(() => digests.delete(version));
  }
  return digest;
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
