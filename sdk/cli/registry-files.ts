/**
 * Where the CLI finds a registry model's files. In this repository: `public/models/<id>/` (what
 * `npm run models` fetched) or the project's own folder. From an installed package there is no
 * such folder, so upstream files are downloaded once into the user's cache
 * (`$WHITTLE_CACHE_DIR`, else `$XDG_CACHE_HOME/whittle`, else `~/.cache/whittle`), each checked
 * against the registry's size and sha256 before it is renamed into place — the same rule as
 * `npm run models`: nothing half-downloaded or unverified ever looks present.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { WhittleError } from '../../core/errors.ts';
import { REPO_ROOT } from '../../models/local.ts';
import { SERVED_DIR, type RegistryFile, type RegistryModel } from '../../models/registry.ts';

export function cacheRoot(): string {
  const env = process.env;
  return resolve(env.WHITTLE_CACHE_DIR ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'whittle'));
}

const hasAll = (dir: string, m: RegistryModel) => m.files.length > 0 && m.files.every((f) => existsSync(join(dir, f.name)) && statSync(join(dir, f.name)).size === f.size);

/** The folders a registry model's files may be in, best first. */
function candidates(m: RegistryModel): string[] {
  const dirs = [join(REPO_ROOT, SERVED_DIR, m.id)];
  if (m.path) dirs.unshift(resolve(REPO_ROOT, m.path));
  dirs.push(join(cacheRoot(), 'models', m.id, m.revision.replace(/[^\w.@-]+/g, '_')));
  return dirs;
}

/** The folder holding every file of `m` on this machine, or null. */
export function presentDir(m: RegistryModel): string | null {
  return candidates(m).find((d) => hasAll(d, m)) ?? null;
}

async function downloadVerified(m: RegistryModel, file: RegistryFile, dest: string, log: (line: string) => void): Promise<void> {
  if (!file.url) throw new WhittleError('UNSUPPORTED', `${m.id} is one of this project's own models and is not published; load its folder by path instead`, { modelId: m.id });
  log(`downloading ${m.id}/${file.name} (${(file.size / 1e6).toFixed(1)} MB) from ${file.url}`);
  // A part name of its own: two CLI runs downloading one file never write into each other's.
  const part = `${dest}.${process.pid}.${randomUUID()}.part`;
  let res: Response;
  try {
    res = await fetch(file.url, { redirect: 'follow' });
  } catch (err) {
    throw new WhittleError('NETWORK', `could not download ${file.url}: ${err instanceof Error ? err.message : String(err)}`, { url: file.url }, { cause: err });
  }
  if (!res.ok || !res.body) throw new WhittleError('NETWORK', `GET ${file.url}: HTTP ${res.status}`, { url: file.url, status: res.status });
  const hash = createHash('sha256');
  let size = 0;
  const body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    hash.update(chunk);
    // A server sending more than the registry says is refused before it fills the disk.
    if (size > file.size) body.destroy(new WhittleError('INTEGRITY', `${file.url} is larger than the registry's ${file.size} bytes`));
  });
  try {
    await pipeline(body, createWriteStream(part));
  } catch (err) {
    rmSync(part, { force: true });
    throw err instanceof WhittleError ? err : new WhittleError('NETWORK', `download of ${file.url} failed: ${err instanceof Error ? err.message : String(err)}`, { url: file.url }, { cause: err });
  }
  const sha256 = hash.digest('hex');
  if (size !== file.size || sha256 !== file.sha256) {
    rmSync(part, { force: true });
    throw new WhittleError('INTEGRITY', `${m.id}/${file.name}: expected ${file.size} bytes with sha256 ${file.sha256}, got ${size} bytes with ${sha256}`, { modelId: m.id, file: file.name });
  }
  renameSync(part, dest);
}

/** The folder holding `m`'s files, downloading the missing ones into the cache first. */
export async function ensureRegistryModel(m: RegistryModel, log: (line: string) => void = (l) => console.error(l)): Promise<string> {
  const present = presentDir(m);
  if (present) return present;
  const dir = candidates(m).at(-1)!;
  mkdirSync(dir, { recursive: true });
  for (const file of m.files) {
    const dest = join(dir, file.name);
    if (existsSync(dest) && statSync(dest).size === file.size) continue;
    await downloadVerified(m, file, dest, log);
  }
  return dir;
}
