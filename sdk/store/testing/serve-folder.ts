/**
 * Test support (Node): a real HTTP server for a model folder held in memory, the way a static
 * host serves one: GET and HEAD with Content-Length and a strong ETag, `Range: bytes=N-`, 404 for
 * what is not there; every request logged. Options reproduce hosts that refuse HEAD or gzip
 * every response.
 *
 * @example
 * const server = await serveFolder({ 'config.json': bytes });
 * await resolveUrlFolder({ url: server.url, integrity: 'none' });
 * await server.close();
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';

export interface ServedFolder {
  /** The folder's URL, ending in '/'. */
  url: string;
  /** Every request so far: method, path (with query) and status. */
  requests: { method: string; path: string; status: number }[];
  close(): Promise<void>;
}

export async function serveFolder(files: Record<string, ArrayBuffer>, opts: { headAllowed?: boolean; prefix?: string; gzip?: boolean; spaFallback?: boolean } = {}): Promise<ServedFolder> {
  const prefix = opts.prefix ?? '/models/folder/';
  const requests: ServedFolder['requests'] = [];
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    const name = decodeURIComponent(new URL(path, 'http://x').pathname).slice(prefix.length);
    const body = path.startsWith(prefix) ? files[name] : undefined;
    const answer = (status: number, headers: Record<string, string | number> = {}, data?: Uint8Array) => {
      requests.push({ method: req.method ?? 'GET', path, status });
      res.writeHead(status, headers);
      res.end(req.method === 'HEAD' ? undefined : data);
    };
    if (req.method === 'HEAD' && opts.headAllowed === false) return answer(405);
    // A single-page-app host (Vite's dev server, Netlify/Vercel rewrites) answers every unknown path with its index.html.
    if (!body && opts.spaFallback) return answer(200, { 'content-type': 'text/html; charset=utf-8' }, new TextEncoder().encode('<!doctype html><html><body>app</body></html>'));
    if (!body) return answer(404);
    const bytes = new Uint8Array(body);
    if (opts.gzip) {
      // A compressing host: every response gzip-encoded, Content-Length compressed, Range ignored.
      const z = gzipSync(bytes);
      return answer(200, { 'content-length': z.length, 'content-encoding': 'gzip' }, z);
    }
    const etag = `"${createHash('sha256').update(bytes).digest('hex').slice(0, 16)}"`;
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      const end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) return answer(416, { 'content-range': `bytes */${bytes.length}` });
      return answer(206, { 'content-range': `bytes ${start}-${end}/${bytes.length}`, 'content-length': end - start + 1, etag }, bytes.subarray(start, end + 1));
    }
    return answer(200, { 'content-length': bytes.length, etag, 'accept-ranges': 'bytes' }, bytes);
  };
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}`,
    requests,
    close: () => new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
  };
}
