/**
 * A model manifest: what to download and how to know it arrived intact.
 *
 * @example
 * const manifest = validateManifest(await (await fetch('/models/manifests.json')).json().models[0]);
 */
import { WhittleError } from '../../core/errors.ts';

/**
 * One file of a model: where it is and how to know it arrived intact.
 *
 * @example
 * const file: ManifestFile = { name: 'model.bin', url: '/models/m/model.bin', size: 1048576, sha256: 'e3b0…' };
 */
export interface ManifestFile {
  /** File name inside the model (unique; may contain '/' for subfolders, never '..'). */
  name: string;
  /** Absolute or page-relative URL. */
  url: string;
  /** Exact byte size. */
  size: number;
  /**
   * Lowercase hex sha256 of the whole file. Required unless the manifest says `integrity: 'none'`;
   * then an absent one means the file is checked for size only and its digest is computed while it
   * downloads (and recorded, so later loads still detect damage to the cached copy).
   */
  sha256?: string;
}

/**
 * What to download for a model (its files, sizes, hashes), and the cache key (`id`, `revision`).
 *
 * @example
 * const manifest: ModelManifest = { id: 'my-model', revision: '1', files: [{ name: 'model.bin', url: '/m/model.bin', size: 1048576, sha256 }] };
 * const lm = await w.text(manifest);
 */
export interface ModelManifest {
  id: string;
  /** A revision string; the same id at another revision is another cache entry. */
  revision: string;
  license?: string;
  /**
   * 'sha256' (the default): every file has a sha256 and is verified against it. 'none': the
   * caller accepted files without one (size-checked only); it must be said explicitly.
   */
  integrity?: 'sha256' | 'none';
  files: ManifestFile[];
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

function bad(message: string, details: Record<string, string | number> = {}): WhittleError {
  return new WhittleError('BAD_MODEL', `invalid manifest: ${message}`, details);
}

/**
 * Checks shape and invariants; returns a normalized copy or throws BAD_MODEL.
 *
 * @example
 * const manifest = validateManifest(await (await fetch('/my-model/manifest.json')).json());
 */
export function validateManifest(input: unknown): ModelManifest {
  if (typeof input !== 'object' || input === null) throw bad('not an object');
  const m = input as Record<string, unknown>;
  // Ids of models loaded by URL are their folder URL, hence the generous length.
  if (typeof m.id !== 'string' || m.id.length === 0 || m.id.length > 2048) throw bad('id must be a non-empty string of at most 2048 characters');
  if (typeof m.revision !== 'string' || m.revision.length === 0) throw bad(`${m.id}: revision must be a non-empty string`);
  if (m.integrity !== undefined && m.integrity !== 'sha256' && m.integrity !== 'none') throw bad(`${m.id}: integrity must be 'sha256' or 'none'`);
  const unverified = m.integrity === 'none';
  if (!Array.isArray(m.files) || m.files.length === 0) throw bad(`${m.id}: files must be a non-empty array`);
  const seen = new Set<string>();
  const files = m.files.map((f: unknown, i): ManifestFile => {
    if (typeof f !== 'object' || f === null) throw bad(`${m.id}: files[${i}] is not an object`);
    const file = f as Record<string, unknown>;
    const { name, url, size, sha256 } = file;
    if (typeof name !== 'string' || name.length === 0 || name.split('/').includes('..') || name.startsWith('/')) {
      throw bad(`${m.id}: files[${i}].name must be a relative file name`, { index: i });
    }
    if (seen.has(name)) throw bad(`${m.id}: duplicate file name ${name}`);
    seen.add(name);
    if (typeof url !== 'string' || url.length === 0) throw bad(`${m.id}/${name}: url missing`);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      throw bad(`${m.id}/${name}: size must be a non-negative integer`);
    }
    if (sha256 === undefined && unverified) return { name, url, size };
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256.toLowerCase())) {
      throw bad(`${m.id}/${name}: sha256 must be 64 hex characters${unverified ? '' : " (or the manifest must say integrity: 'none')"}`);
    }
    return { name, url, size, sha256: sha256.toLowerCase() };
  });
  // Quota and budget checks add the sizes up: past 2^53 the sum is no longer exact (each size alone may be).
  if (!Number.isSafeInteger(files.reduce((sum, f) => sum + f.size, 0))) throw bad(`${m.id}: the files add up to more than 2^53 bytes`);
  return {
    id: m.id,
    revision: m.revision,
    ...(typeof m.license === 'string' ? { license: m.license } : {}),
    ...(unverified ? { integrity: 'none' as const } : {}),
    files,
  };
}

/** The cache key of a model entry. */
export function entryKey(m: Pick<ModelManifest, 'id' | 'revision'>): string {
  return `${m.id}@${m.revision}`;
}

/** Whether every file of the manifest has a sha256 (so nothing rests on sizes alone). */
export function fullyVerified(m: ModelManifest): boolean {
  return m.files.every((f) => f.sha256 !== undefined);
}

export function manifestBytes(m: ModelManifest): number {
  return m.files.reduce((sum, f) => sum + f.size, 0);
}
