/**
 * A Vite plugin for the browser tests (enabled with WHITTLE_E2E=1): serves model files with
 * injected faults and logs every model request, so specs can assert on what hit the network.
 *
 *   GET /__e2e/file/<id>/<name>?t=<token>&cut=<byte>&corrupt=<byte>&delay=<ms>&noRange=1
 *     cut:     the first request carrying token t drops the connection after byte <cut>
 *     corrupt: flips the bits of byte <corrupt> in every response
 *     delay:   waits <delay> ms between 64 KiB chunks (to abort mid-download)
 *     noRange: ignores Range headers (answers 200 with the whole file)
 *     lie416:  answers every Range request with 416 and an HTML error page (as nginx does) although
 *              the range is satisfiable
 *     badRange=<n>: answers a Range request for bytes=N- with a 206 of bytes N-n.. (its Content-Range
 *              says so truthfully: a range the client did not ask for)
 *     badRangeAll=<b>: answers every GET, ranged or not, with a 206 of the bytes from <b>
 *     gzip:    serves the body gzip-encoded (Content-Encoding: gzip, Content-Length of the compressed
 *              body, Range ignored), as a compressing static host or CDN does
 *   GET /__e2e/synth/<size>.bin?<faults as above>
 *     <size> deterministic pseudo-random bytes (synthBytes), for files bigger than the models
 *   GET|HEAD /__e2e/hf/<flags>/<id>/<name>
 *     public/models/<id>/ as a Hugging Face folder at a URL (what `w.text(url)` loads). The flags
 *     are a path segment (file names are appended to the folder URL, so they cannot be a query):
 *     '-' for none, else comma-separated:
 *     manifest:     serve a whittle.json listing every file with its size and sha256
 *     manifestlie:  the same, claiming the largest file is 10 bytes bigger than it is
 *     headlie:      HEAD claims every .safetensors file is 10 bytes bigger than it is
 *     bf16x3:       the folder's model.safetensors rewritten as BF16 in 3 shards + index
 *     cut=<byte>,t=<token>: the first GET with this token of a file longer than <byte> is cut there
 *     gzip:         every file (HEAD and GET) is served gzip-encoded, Content-Length compressed
 *   GET /__e2e/log           -> JSON list of model requests so far
 *   GET /__e2e/log?clear=1   -> clears it
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';
import { reshardHfFolder } from '../models/import/hf/testing/folder.ts';

export interface LoggedRequest {
  url: string;
  method?: string;
  range: string | null;
  status: number;
  at: number;
}

/**
 * `size` deterministic bytes (xorshift32 from a fixed seed): a file as big as a test needs, whose
 * sha256 the spec computes with the same function. Incompressible, like weights.
 */
export function synthBytes(size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = 0x9e3779b9;
  for (let i = 0; i + 4 <= size; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out.writeUInt32LE(x >>> 0, i);
  }
  return out;
}

/** The files of public/models/<id>/ as served under /__e2e/hf/ (rewritten for bf16x3), memoized. */
function hfFolder(publicModelsDir: string, id: string, bf16x3: boolean, memo: Map<string, Map<string, Buffer>>): Map<string, Buffer> | null {
  const key = `${id}:${bf16x3}`;
  const hit = memo.get(key);
  if (hit) return hit;
  const dir = join(publicModelsDir, id);
  if (id.includes('..') || !existsSync(dir)) return null;
  let files = new Map(readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile()).map((n) => [n, readFileSync(join(dir, n))] as const));
  if (bf16x3) {
    const asBuffers = Object.fromEntries([...files].map(([n, b]) => [n, b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer]));
    files = new Map(Object.entries(reshardHfFolder(asBuffers, { dtype: 'BF16', shards: 3 })).map(([n, b]) => [n, Buffer.from(b)] as const));
  }
  memo.set(key, files);
  return files;
}

/** whittle.json for a folder (folder-manifest.ts's format), optionally lying about its largest file. */
function folderManifest(files: Map<string, Buffer>, lie: boolean): Buffer {
  const largest = [...files].sort((a, b) => b[1].length - a[1].length)[0]?.[0];
  const list = [...files].map(([name, b]) => ({ name, size: b.length + (lie && name === largest ? 10 : 0), sha256: createHash('sha256').update(b).digest('hex') }));
  return Buffer.from(JSON.stringify({ whittle: 1, revision: 'e2e', files: list }));
}

export function e2eFixtures(publicModelsDir: string): Plugin {
  const log: LoggedRequest[] = [];
  const cutDone = new Set<string>();

  const memo = new Map<string, Map<string, Buffer>>();

  const notFound = (req: IncomingMessage, res: ServerResponse) => {
    res.statusCode = 404;
    res.end();
    log.push({ url: req.url ?? '', method: req.method ?? 'GET', range: null, status: 404, at: Date.now() });
  };

  const synth = new Map<number, Buffer>();
  /** /__e2e/synth/<size>.bin: synthBytes(size), with the faults in the query. */
  const serveSynth = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const size = Number(/^\/__e2e\/synth\/(\d+)\.bin$/.exec(url.pathname)?.[1] ?? NaN);
    if (!Number.isSafeInteger(size) || size > 256 << 20) return notFound(req, res);
    if (!synth.has(size)) synth.set(size, synthBytes(size));
    await sendBytes(req, res, synth.get(size)!, url.searchParams);
  };

  const serveFile = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const rel = decodeURIComponent(url.pathname.slice('/__e2e/file/'.length));
    if (rel.split('/').includes('..')) {
      res.statusCode = 400;
      res.end();
      return;
    }
    let data: Buffer;
    try {
      data = Buffer.from(readFileSync(join(publicModelsDir, rel)));
    } catch {
      notFound(req, res);
      return;
    }
    await sendBytes(req, res, data, url.searchParams);
  };

  /** /__e2e/hf/<flags>/<id>/<name>: a model folder at a URL, with the faults its flags name. */
  const serveHf = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const [flagSegment = '-', id = '', ...rest] = decodeURIComponent(url.pathname.slice('/__e2e/hf/'.length)).split('/');
    const name = rest.join('/');
    const flags = new Set(flagSegment === '-' ? [] : flagSegment.split(','));
    const param = (k: string) => [...flags].find((f) => f.startsWith(`${k}=`))?.slice(k.length + 1) ?? null;
    const files = name.split('/').includes('..') ? null : hfFolder(publicModelsDir, id, flags.has('bf16x3'), memo);
    let data = files?.get(name);
    if (files && name === 'whittle.json' && (flags.has('manifest') || flags.has('manifestlie'))) data = folderManifest(files, flags.has('manifestlie'));
    if (!data) return notFound(req, res);
    if (req.method === 'HEAD') {
      const gzip = flags.has('gzip');
      const size = (gzip ? gzipSync(data).length : data.length) + (flags.has('headlie') && name.endsWith('.safetensors') ? 10 : 0);
      log.push({ url: req.url ?? '', method: 'HEAD', range: null, status: 200, at: Date.now() });
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size, 'accept-ranges': 'bytes', etag: `"${createHash('sha256').update(data).digest('hex').slice(0, 16)}"`, 'cache-control': 'no-store', ...(gzip ? { 'content-encoding': 'gzip' } : {}) });
      res.end();
      return;
    }
    const q = new URLSearchParams();
    if (flags.has('gzip')) q.set('gzip', '1');
    const cut = param('cut');
    if (cut !== null && data.length > Number(cut)) {
      q.set('cut', cut);
      q.set('t', param('t') ?? '');
    }
    await sendBytes(req, res, data, q);
  };

  /** Answers a GET with `data`: Range, and the faults in `q` (see the top of this file). */
  const sendBytes = async (req: IncomingMessage, res: ServerResponse, input: Buffer, q: URLSearchParams) => {
    const data = Buffer.from(input); // corrupt= flips a byte of this copy, never of a memoized file
    const corrupt = q.get('corrupt');
    if (corrupt !== null) data[Number(corrupt)]! ^= 0xff;
    const range = q.get('noRange') || q.get('gzip') ? null : (req.headers.range ?? null);
    const logged = (status: number) => log.push({ url: req.url ?? '', method: req.method ?? 'GET', range, status, at: Date.now() });
    if (q.get('gzip')) {
      // A compressing host: the whole file, encoded; Content-Length counts compressed bytes.
      const body = gzipSync(data);
      logged(200);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-encoding': 'gzip', 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    let start = 0;
    let status = 200;
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m && q.get('lie416')) {
      const page = Buffer.from('<html><body><h1>416 Requested Range Not Satisfiable</h1></body></html>');
      logged(416);
      res.writeHead(416, { 'content-type': 'text/html', 'content-length': page.length, 'content-range': `bytes */${data.length}` });
      res.end(page);
      return;
    }
    const badRangeAll = q.get('badRangeAll');
    if (m || badRangeAll !== null) {
      start = badRangeAll !== null ? Number(badRangeAll) : Math.max(0, Number(m![1]) - Number(q.get('badRange') ?? 0));
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        logged(416);
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    headers['content-length'] = data.length - start;
    logged(status);
    res.writeHead(status, headers);

    const token = q.get('t') ?? '';
    const cutParam = q.get('cut');
    const cutAt = cutParam !== null && !cutDone.has(token) ? Number(cutParam) : null;
    if (cutAt !== null) cutDone.add(token);
    const delay = Number(q.get('delay') ?? 0);
    const CHUNK = 64 * 1024;
    for (let pos = start; pos < data.length; pos += CHUNK) {
      const end = Math.min(pos + CHUNK, data.length, cutAt !== null && cutAt > pos ? cutAt : Infinity);
      if (cutAt !== null && pos >= cutAt) break;
      if (!res.write(data.subarray(pos, end))) await new Promise((r) => res.once('drain', r));
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      if (res.destroyed) return;
    }
    if (cutAt !== null) {
      // Let the bytes go out, then kill the connection mid-body.
      await new Promise((r) => setTimeout(r, 50));
      res.socket?.destroy();
      return;
    }
    res.end();
  };

  return {
    name: 'whittle-e2e-fixtures',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = new URL(req.url ?? '/', 'http://x');
        if (url.pathname === '/__e2e/log') {
          if (url.searchParams.get('clear')) log.length = 0;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(log));
          return;
        }
        if (url.pathname.startsWith('/__e2e/file/') || url.pathname.startsWith('/__e2e/hf/') || url.pathname.startsWith('/__e2e/synth/')) {
          (url.pathname.startsWith('/__e2e/hf/') ? serveHf : url.pathname.startsWith('/__e2e/synth/') ? serveSynth : serveFile)(req, res, url).catch((err: unknown) => {
            res.statusCode = 500;
            res.end(String(err));
          });
          return;
        }
        if (url.pathname.startsWith('/models/')) {
          log.push({ url: req.url ?? '', range: req.headers.range ?? null, status: 0, at: Date.now() });
        }
        next();
      });
    },
  };
}
