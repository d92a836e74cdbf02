/**
 * `whittle.json`: the manifest a publisher puts in a model folder served over HTTP, so that
 * `w.text('https://host/models/smol/')` verifies every file by sha256 with nothing else from the
 * caller. It lists the files to load (names relative to the folder), their exact sizes and sha256s:
 *
 * ```json
 * {
 *   "whittle": 1,
 *   "revision": "2025-01-31",
 *   "license": "apache-2.0",
 *   "files": [
 *     { "name": "config.json", "size": 778, "sha256": "5c1e…" },
 *     { "name": "model-00001-of-00002.safetensors", "size": 4998712, "sha256": "09af…" }
 *   ]
 * }
 * ```
 *
 * `revision` (optional) is part of the cache key: publish new files under a new revision and
 * callers who ask for it (`{ url, revision }`) download them; without one the cached copy is used.
 *
 * @example
 * const m = parseFolderManifest(await (await fetch(new URL('whittle.json', folder))).json());
 */
import { WhittleError } from '../../core/errors.ts';

/**
 * `whittle.json`, the manifest a publisher puts beside a model's files so that loads by URL are
 * verified (sha256) and versioned (`revision`). `npx whittle manifest <folder>` writes one.
 *
 * @example
 * const manifest: FolderManifest = { revision: '2026-11-30', files: [{ name: 'model.safetensors', size: 9437184, sha256: '…' }] };
 */
export interface FolderManifest {
  revision?: string;
  license?: string;
  files: { name: string; size: number; sha256: string }[];
}

/** The manifest's own file name, beside the model files. */
export const FOLDER_MANIFEST = 'whittle.json';

/**
 * A file name inside a model folder: plain relative path segments of letters, digits, '_', '-'
 * and '.', never '..'. Names become URLs beside the folder, so nothing may climb out of it, name
 * another host or carry a query.
 */
export const FOLDER_FILE_NAME = /^(?!.*\.\.)[\w.-]+(\/[\w.-]+)*$/;

const SHA256_HEX = /^[0-9a-f]{64}$/;

export function parseFolderManifest(input: unknown): FolderManifest {
  const bad = (why: string) => new WhittleError('BAD_MODEL', `${FOLDER_MANIFEST}: ${why}`, { file: FOLDER_MANIFEST });
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw bad('not a JSON object');
  const m = input as Record<string, unknown>;
  // The value is shown only when it is a plain one: JSON.stringify of a value nested 100,000
  // deep (the file comes from any host) overflows the stack and would replace this typed error.
  if (m.whittle !== 1) throw bad(`"whittle" must be 1 (the format version), got ${typeof m.whittle === 'object' && m.whittle !== null ? 'an object' : String(m.whittle)}`);
  if (m.revision !== undefined && (typeof m.revision !== 'string' || m.revision.length === 0 || m.revision.length > 200)) {
    throw bad('"revision" must be a non-empty string of at most 200 characters');
  }
  if (m.license !== undefined && typeof m.license !== 'string') throw bad('"license" must be a string');
  if (!Array.isArray(m.files) || m.files.length === 0) throw bad('"files" must be a non-empty array');
  const seen = new Set<string>();
  const files = m.files.map((f: unknown, i) => {
    const { name, size, sha256 } = (typeof f === 'object' && f !== null ? f : {}) as Record<string, unknown>;
    if (typeof name !== 'string' || !FOLDER_FILE_NAME.test(name) || name === FOLDER_MANIFEST) throw bad(`files[${i}].name must be a plain relative file name`);
    if (seen.has(name)) throw bad(`${name} is listed twice`);
    seen.add(name);
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw bad(`${name}: size must be a non-negative integer`);
    if (typeof sha256 !== 'string' || !SHA256_HEX.test(sha256.toLowerCase())) throw bad(`${name}: sha256 must be 64 hex characters`);
    return { name, size, sha256: sha256.toLowerCase() };
  });
  return {
    ...(typeof m.revision === 'string' ? { revision: m.revision } : {}),
    ...(typeof m.license === 'string' ? { license: m.license } : {}),
    files,
  };
}
