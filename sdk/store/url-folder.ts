/**
 * A model folder at a URL (Hugging Face layout) -> a ModelManifest the store can load.
 *
 * What is downloaded, and how it is verified, in order of preference:
 * 1. a `whittle.json` beside the files (folder-manifest.ts) lists them with sizes and sha256s;
 * 2. otherwise the files are discovered: `config.json` and `tokenizer.json` (required),
 *    `model.safetensors.index.json` and the shards its weight_map names, else `model.safetensors`
 *    (required), `tokenizer_config.json` and `generation_config.json` (optional: 404 is fine);
 *    their sizes come from HEAD (Content-Length), and their sha256s from the caller (`sha256`),
 *    or nowhere, which the caller must accept with `integrity: 'none'`; the store then checks
 *    sizes only (and refuses a mismatch) and records the digests it computed.
 *
 * The cache key is (folder URL without its query, revision). The revision is the caller's
 * `revision`, else whittle.json's, else one derived from the servers' ETag/Last-Modified headers,
 * else 'unversioned'. A folder already cached is used without asking the server anything (the
 * most recently used revision when the caller names none), like transformers.js and an offline
 * app need; a caller who wants the publisher's new upload names its revision.
 *
 * Pure apart from the fetch it is given: the CLI runs it in Node.
 *
 * @example
 * const manifest = await resolveUrlFolder({ url: '/models/smol/', integrity: 'none' }, { base: location.href, cached: (id, r) => store.entry(id, r) });
 */
import { sha256 as sha256Hex } from 'hash-wasm';
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { readWeightMap } from '../../models/import/hf/model.ts';
import { FOLDER_FILE_NAME, FOLDER_MANIFEST, parseFolderManifest, type FolderManifest } from './folder-manifest.ts';
import { validateManifest, type ModelManifest } from './manifest.ts';
import type { CacheEntry } from './meta.ts';
import { isEncoded, parseContentRange } from './resume.ts';

/**
 * A model folder served over HTTP, with what the caller knows about its files.
 *
 * @example
 * await w.text({ url: 'https://host/models/smol/', sha256: { 'model.safetensors': '09af…', 'config.json': '5c1e…', 'tokenizer.json': '77d0…' } });
 * await w.text({ url: '/models/smol/', integrity: 'none' }); // no hashes anywhere: sizes only, said explicitly
 */
export interface UrlModelSource {
  /**
   * The folder: absolute, or relative to the page. A query string (a signed URL's token) is sent
   * with every file request but is not part of the cache key.
   */
  url: string;
  /** File names to load instead of discovering them (relative to the folder). */
  files?: string[];
  /** Lowercase hex sha256 per file name; checked against what arrives (and against whittle.json). */
  sha256?: Record<string, string>;
  /**
   * 'none' accepts files that nothing can verify (no whittle.json, no `sha256` for them): only
   * their sizes are checked. Without it such a folder is an INVALID_ARGUMENT error.
   */
  integrity?: 'sha256' | 'none';
  /** A label for the folder's current content, part of the cache key (see the top of this file). */
  revision?: string;
}

export interface ResolveFolderOptions {
  /** Defaults to the global fetch. */
  fetch?: typeof fetch;
  /** What relative URLs resolve against (the page's URL in a browser). */
  base?: string;
  /** The store's entry for (id, revision), or for id at its most recently used revision. */
  cached?: (id: string, revision?: string) => Promise<CacheEntry | undefined>;
  signal?: AbortSignal;
}

const INDEX = 'model.safetensors.index.json';
const REQUIRED = ['config.json', 'tokenizer.json'];
const OPTIONAL = ['tokenizer_config.json', 'generation_config.json'];
const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Whether a model argument is a URL (vs a registry id): a scheme, a leading '/', './' or '../', or a trailing '/'. */
export function isModelUrl(s: string): boolean {
  return /^[a-z][a-z\d+.-]*:/i.test(s) || s.startsWith('/') || s.startsWith('./') || s.startsWith('../') || s.endsWith('/');
}

const invalid = (message: string, details: Record<string, string> = {}) => new WhittleError('INVALID_ARGUMENT', message, details);

/** The folder's cache id (its URL with a trailing '/', no query) and each file's request URL. */
export function folderLocation(url: string, base?: string): { id: string; fileUrl: (name: string) => string } {
  let u: URL;
  try {
    u = base === undefined ? new URL(url) : new URL(url, base);
  } catch {
    throw invalid(`'${url}' is not a URL${base === undefined ? ' (relative URLs need a page to resolve against: give an absolute one)' : ''}`, { url });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw invalid(`model folders load over http(s), not ${u.protocol}`, { url });
  const search = u.search;
  u.search = '';
  u.hash = '';
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  const folder = u.href;
  return { id: folder, fileUrl: (name) => new URL(name, folder).href + search };
}

function checkSource(source: UrlModelSource): void {
  if (typeof source.url !== 'string' || source.url.length === 0) throw invalid('url must be a non-empty string');
  if (source.integrity !== undefined && source.integrity !== 'sha256' && source.integrity !== 'none') {
    throw invalid(`integrity must be 'sha256' or 'none', got ${JSON.stringify(source.integrity)}`);
  }
  if (source.revision !== undefined && (typeof source.revision !== 'string' || source.revision.length === 0)) throw invalid('revision must be a non-empty string');
  if (source.files !== undefined) {
    if (!Array.isArray(source.files) || source.files.length === 0) throw invalid('files must be a non-empty array of file names');
    for (const n of source.files) if (typeof n !== 'string' || !FOLDER_FILE_NAME.test(n)) throw invalid(`files: ${JSON.stringify(n)} is not a plain relative file name`);
  }
  for (const [name, sha] of Object.entries(source.sha256 ?? {})) {
    if (typeof sha !== 'string' || !SHA256_HEX.test(sha)) throw invalid(`sha256['${name}'] must be 64 lowercase hex characters`, { file: name });
  }
}

/**
 * The manifest of a model folder at a URL: from the cache's entry when there is one the caller
 * can use (no network at all), else from whittle.json or discovery (see the top of this file).
 */
export async function resolveUrlFolder(input: string | UrlModelSource, opts: ResolveFolderOptions = {}): Promise<ModelManifest> {
  const source: UrlModelSource = typeof input === 'string' ? { url: input } : input;
  checkSource(source);
  const { id, fileUrl } = folderLocation(source.url, opts.base);
  const given = source.sha256 ?? {};
  const acceptsUnverified = source.integrity === 'none';

  const entry = await opts.cached?.(id, source.revision);
  if (entry) {
    const fromCache = manifestFromEntry(entry, source, fileUrl);
    if (fromCache) return fromCache;
  }

  const http = new Http(opts.fetch ?? globalThis.fetch.bind(globalThis), opts.signal);
  const published = await http.json(fileUrl(FOLDER_MANIFEST), FOLDER_MANIFEST, false);
  if (published !== null) return fromFolderManifest(parseFolderManifest(published.json), source, id, fileUrl);

  if (!acceptsUnverified && Object.keys(given).length === 0) {
    throw invalid(
      `${id} has no ${FOLDER_MANIFEST} beside its files and you gave no sha256 for them, so nothing would verify what arrives. ` +
        `Give { url, sha256: { 'config.json': '…', … } }, publish a ${FOLDER_MANIFEST} in the folder (format: sdk/store/README.md), or accept size checks only with { url, integrity: 'none' }.`,
      { url: id },
    );
  }
  const found = await discover(http, source.files, fileUrl);
  const unknown = Object.keys(given).filter((n) => !found.some((f) => f.name === n));
  if (unknown.length > 0) throw invalid(`sha256 given for ${unknown.join(', ')}, which ${id} does not have`, { url: id });
  const unverified = found.filter((f) => given[f.name] === undefined).map((f) => f.name);
  if (unverified.length > 0 && !acceptsUnverified) {
    throw invalid(`${id}: no sha256 for ${unverified.join(', ')}; give one for each file or accept size checks only with integrity: 'none'`, { url: id });
  }
  const tags = found.map((f) => `${f.name}\n${f.tag ?? ''}`).join('\n');
  const revision = source.revision ?? (found.some((f) => f.tag) ? `http-${(await sha256Hex(tags)).slice(0, 16)}` : 'unversioned');
  return validateManifest({
    id,
    revision,
    ...(unverified.length > 0 ? { integrity: 'none' } : {}),
    files: found.map((f) => ({ name: f.name, url: fileUrl(f.name), size: f.size, ...(given[f.name] ? { sha256: given[f.name] } : {}) })),
  });
}

/**
 * The manifest of a cached entry, or null when the caller wants other bytes (other files, or
 * sha256s the cached ones do not have). An entry loaded unverified is used only by a caller who
 * accepts that again (or whose sha256s now cover every file).
 */
function manifestFromEntry(entry: CacheEntry, source: UrlModelSource, fileUrl: (name: string) => string): ModelManifest | null {
  const given = source.sha256 ?? {};
  const has = (n: string) => entry.files.some((f) => f.name === n);
  if (source.files && !source.files.every(has)) return null;
  // A whole-folder load must not be answered by an entry cached from a `files` subset (say a
  // llama2.c pair): reuse only an entry that is a model folder in its own right.
  if (!source.files && !(REQUIRED.every(has) && entry.files.some((f) => f.name.endsWith('.safetensors')))) return null;
  if (!Object.entries(given).every(([n, sha]) => entry.files.some((f) => f.name === n && f.sha256 === sha))) return null;
  const verified = entry.integrity !== 'none' || entry.files.every((f) => given[f.name] !== undefined);
  if (!verified && source.integrity !== 'none') {
    throw invalid(`${entry.id} is cached from a download nothing verified (integrity: 'none'); say integrity: 'none' again to use it, or give sha256 for its files`, { url: entry.id });
  }
  return validateManifest({
    id: entry.id,
    revision: entry.revision,
    ...(entry.license ? { license: entry.license } : {}),
    ...(verified ? {} : { integrity: 'none' }),
    files: entry.files.map((f) => ({ name: f.name, url: fileUrl(f.name), size: f.size, sha256: f.sha256 })),
  });
}

function fromFolderManifest(m: FolderManifest, source: UrlModelSource, id: string, fileUrl: (name: string) => string): ModelManifest {
  const names = source.files ?? m.files.map((f) => f.name);
  const files = names.map((n) => {
    const f = m.files.find((x) => x.name === n);
    if (!f) throw invalid(`${n} is not listed in ${id}${FOLDER_MANIFEST}`, { url: id, file: n });
    const mine = source.sha256?.[n];
    if (mine !== undefined && mine !== f.sha256) {
      throw new WhittleError('INTEGRITY', `${id}${FOLDER_MANIFEST} gives ${n} the sha256 ${f.sha256}, you gave ${mine}`, { file: n, expected: mine, actual: f.sha256 });
    }
    return { name: n, url: fileUrl(n), size: f.size, sha256: f.sha256 };
  });
  for (const n of Object.keys(source.sha256 ?? {})) if (!names.includes(n)) throw invalid(`sha256 given for ${n}, which is not among the files to load`, { file: n });
  return validateManifest({ id, revision: source.revision ?? m.revision ?? 'unversioned', ...(m.license ? { license: m.license } : {}), files });
}

interface Found {
  name: string;
  size: number;
  /** ETag or Last-Modified, for the revision. */
  tag: string | null;
}

/** The files of an HF folder and their sizes (or of `names`, when the caller listed them). */
async function discover(http: Http, names: string[] | undefined, fileUrl: (name: string) => string): Promise<Found[]> {
  if (names) return Promise.all(names.map(async (n) => (await http.probe(fileUrl(n), n, true))!));
  const config = await http.probe(fileUrl('config.json'), 'config.json', true);
  const index = await http.json(fileUrl(INDEX), INDEX, false);
  const weights: string[] = index ? [...new Set(readWeightMap(index.json).values())].sort() : ['model.safetensors'];
  const rest = [...REQUIRED.filter((n) => n !== 'config.json'), ...weights];
  const found = await Promise.all([
    ...rest.map((n) => http.probe(fileUrl(n), n, true)),
    ...OPTIONAL.map((n) => http.probe(fileUrl(n), n, false)),
  ]);
  return [config!, ...(index ? [{ name: INDEX, size: index.size, tag: index.tag }] : []), ...found.filter((f): f is Found => f !== null)];
}

/** Statuses that mean "no such file" for an optional one (S3 answers 403 for a missing key). */
const ABSENT = new Set([403, 404, 410]);

/** The few requests discovery makes, with typed errors. */
class Http {
  constructor(
    private readonly fetchFn: typeof fetch,
    private readonly signal: AbortSignal | undefined,
  ) {}

  private async request(url: string, name: string, init: RequestInit): Promise<Response> {
    throwIfAborted(this.signal);
    try {
      return await this.fetchFn(url, { ...init, signal: this.signal, cache: 'no-store' });
    } catch (err) {
      throwIfAborted(this.signal);
      throw new WhittleError('NETWORK', `${name}: ${err instanceof Error ? err.message : String(err)}`, { file: name, url }, { cause: err });
    }
  }

  private missing(res: Response, url: string, name: string, required: boolean): boolean {
    if (res.ok) return false;
    if (res.status === 404 || res.status === 410 || (!required && ABSENT.has(res.status))) {
      if (!required) return true;
      throw new WhittleError('BAD_MODEL', `${name} is missing (HTTP ${res.status} from ${url}); a model folder needs it`, { file: name, url, status: res.status });
    }
    throw new WhittleError('NETWORK', `${name}: HTTP ${res.status} from ${url}`, { file: name, url, status: res.status });
  }

  /**
   * Single-page-app hosts (Vite's dev server, SPA rewrites) answer a missing file with their
   * index.html and a 200. No model file is HTML, so for an optional file that means absent
   * (true), for a required one it is a clear error rather than "not JSON" or a wrong size.
   */
  private spaFallback(res: Response, url: string, name: string, required: boolean): boolean {
    if (!/^text\/html\b/i.test(res.headers.get('content-type') ?? '')) return false;
    if (!required) return true;
    throw new WhittleError('BAD_MODEL', `${name} is missing: ${url} answered with an HTML page (a single-page-app fallback?)`, { file: name, url });
  }

  /** A JSON file's parsed body, decoded size and version tag; null when optional and absent. */
  async json(url: string, name: string, required: boolean): Promise<{ json: unknown; size: number; tag: string | null } | null> {
    const res = await this.request(url, name, {});
    if (this.missing(res, url, name, required) || this.spaFallback(res, url, name, required)) return null;
    const bytes = new Uint8Array(await res.arrayBuffer());
    try {
      return { json: JSON.parse(new TextDecoder().decode(bytes)), size: bytes.byteLength, tag: tagOf(res) };
    } catch (err) {
      throw new WhittleError('BAD_MODEL', `${name} is not JSON`, { file: name, url }, { cause: err });
    }
  }

  /** How many bytes a GET of `url` hands over once decoded (read and dropped, never kept). */
  private async decodedSize(url: string, name: string): Promise<number> {
    const res = await this.request(url, name, {});
    if (!res.ok || !res.body) throw new WhittleError('NETWORK', `${name}: HTTP ${res.status} from ${url}`, { file: name, url, status: res.status });
    const reader = res.body.getReader();
    let size = 0;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return size;
        size += value.byteLength;
        throwIfAborted(this.signal);
      }
    } catch (err) {
      throwIfAborted(this.signal);
      if (err instanceof WhittleError) throw err;
      throw new WhittleError('NETWORK', `${name}: ${err instanceof Error ? err.message : String(err)}`, { file: name, url }, { cause: err });
    }
  }

  /** A file's size without its body: HEAD, or a one-byte range where HEAD is not allowed. */
  async probe(url: string, name: string, required: boolean): Promise<Found | null> {
    let res = await this.request(url, name, { method: 'HEAD' });
    if (res.status === 405 || res.status === 501) {
      res = await this.request(url, name, { headers: { Range: 'bytes=0-0' } });
      await res.body?.cancel().catch(() => undefined);
    }
    if (this.missing(res, url, name, required) || this.spaFallback(res, url, name, required)) return null;
    if (isEncoded(res.headers.get('content-encoding'))) {
      // fetch() hands over the decoded body and no header counts it (Content-Length counts the
      // compressed bytes), so the size is learned by reading the body once. That costs a download
      // during discovery; a whittle.json (which gives sizes) avoids it.
      return { name, size: await this.decodedSize(url, name), tag: tagOf(res) };
    }
    const size = res.status === 206 ? (parseContentRange(res.headers.get('content-range'))?.total ?? null) : numberOrNull(res.headers.get('content-length'));
    if (size === null) {
      throw new WhittleError('BAD_MODEL', `${url} does not say how big ${name} is (no Content-Length); publish a ${FOLDER_MANIFEST} with sizes`, { file: name, url });
    }
    return { name, size, tag: tagOf(res) };
  }
}

function numberOrNull(v: string | null): number | null {
  const n = v === null || v.trim() === '' ? NaN : Number(v);
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

function tagOf(res: Response): string | null {
  return res.headers.get('etag') ?? res.headers.get('last-modified');
}
