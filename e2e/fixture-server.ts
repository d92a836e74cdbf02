/**
 * A Vite plugin for the browser tests (enabled with WHITTLE_E2E=1): serves model files with
 * injected faults and logs every model request, so specs can assert on what hit the network.
 *
 *   GET /__e2e/file/<id>/<name>?t=<token>&cut=<byte>&corrupt=<byte>&delay=<ms>&noRange=1
 *     cut:     the first request carrying token t drops the connection after byte <cut>
 *     corrupt: flips the bits of byte <corrupt> in every response
 *     delay:   waits <delay> ms between 64 KiB chunks (to abort mid-download)
 *     noRange: ignores Range headers (answers 200 with the whole file)
 *   GET /__e2e/log           -> JSON list of model requests so far
 *   GET /__e2e/log?clear=1   -> clears it
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Plugin } from 'vite';

export interface LoggedRequest {
  url: string;
  range: string | null;
  status: number;
  at: number;
}

export function e2eFixtures(publicModelsDir: string): Plugin {
  const log: LoggedRequest[] = [];
  const cutDone = new Set<string>();

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
      res.statusCode = 404;
      res.end();
      log.push({ url: req.url ?? '', range: null, status: 404, at: Date.now() });
      return;
    }
    const q = url.searchParams;
    const corrupt = q.get('corrupt');
    if (corrupt !== null) data[Number(corrupt)]! ^= 0xff;
    const range = q.get('noRange') ? null : (req.headers.range ?? null);
    let start = 0;
    let status = 200;
    const headers: Record<string, string | number> = { 'content-type': 'application/octet-stream', 'accept-ranges': 'bytes', 'cache-control': 'no-store' };
    const m = range ? /^bytes=(\d+)-$/.exec(range) : null;
    if (m) {
      start = Number(m[1]);
      if (start >= data.length) {
        res.writeHead(416, { 'content-range': `bytes */${data.length}` });
        res.end();
        log.push({ url: req.url ?? '', range, status: 416, at: Date.now() });
        return;
      }
      status = 206;
      headers['content-range'] = `bytes ${start}-${data.length - 1}/${data.length}`;
    }
    headers['content-length'] = data.length - start;
    log.push({ url: req.url ?? '', range, status, at: Date.now() });
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
        if (url.pathname.startsWith('/__e2e/file/')) {
          serveFile(req, res, url).catch((err: unknown) => {
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
