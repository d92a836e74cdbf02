/**
 * `whittle conformance`: serves the conformance page (dist/conformance.html and the runtime files
 * beside it: the page's script, the workers, onnxruntime's files) and a models folder, with the
 * cross-origin isolation headers WASM threads need, on a local port, and prints the URL. Open it
 * in any browser, or drive it with Playwright; it runs until interrupted.
 *
 *   whittle conformance [--port 8787] [--host 127.0.0.1] [--models ./public/models]
 *
 * A phone on the same network: `--host 0.0.0.0` and open the printed LAN address. Browsers give
 * WebGPU, OPFS and threads only to secure contexts (https, or localhost), so on a phone forward
 * the port to its localhost (`adb reverse tcp:8787 tcp:8787`) or put https in front.
 *
 * @example
 * await conformanceCommand(['--port', '8787', '--models', 'public/models']); // resolves on SIGINT
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { WhittleError } from '../../core/errors.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.wav': 'audio/wav',
};

const HEADERS = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

/** Where the built page is: beside the built CLI (dist/), or dist/ of a source checkout. */
function pageRoot(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  for (const dir of [here, resolve(here, '../../dist')]) if (existsSync(join(dir, 'conformance.html'))) return dir;
  throw new WhittleError(
    'UNSUPPORTED',
    `the conformance page is not built (no conformance.html beside ${here}); in a source checkout run: npm run build:lib`,
  );
}

/** A file under `root` for a URL path, or null (outside it, missing, or a folder). */
function fileUnder(root: string, path: string): string | null {
  const file = normalize(join(root, path));
  if (!(file === root || file.startsWith(root + sep))) return null;
  return existsSync(file) && statSync(file).isFile() ? file : null;
}

/**
 * Starts the server; resolves with it and its origin (the page is at `${origin}/`).
 *
 * @example
 * const { origin, server } = await serveConformance({ port: 0, host: '127.0.0.1', models: 'public/models' });
 */
export async function serveConformance({
  port,
  host,
  models,
}: {
  port: number;
  host: string;
  models: string | null;
}): Promise<{ server: Server; origin: string }> {
  const root = pageRoot();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const file =
      path === '/'
        ? join(root, 'conformance.html')
        : path.startsWith('/models/')
          ? models
            ? fileUnder(models, path.slice('/models/'.length))
            : null
          : fileUnder(root, path);
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, HEADERS).end();
    if (!file || (!path.startsWith('/models/') && !TYPES[extname(file)])) return void res.writeHead(404, HEADERS).end();
    res.writeHead(200, {
      ...HEADERS,
      'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
      'Content-Length': String(statSync(file).size),
    });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      fail(new WhittleError('INVALID_ARGUMENT', `cannot listen on ${host}:${port}: ${err.code ?? err.message}`)),
    );
    server.listen(port, host, ok);
  });
  const { port: bound } = server.address() as AddressInfo;
  return { server, origin: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}` };
}

/** The command: parses arguments, serves, prints where, and waits for SIGINT/SIGTERM. */
export async function conformanceCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    options: { port: { type: 'string', default: '8787' }, host: { type: 'string', default: '127.0.0.1' }, models: { type: 'string' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new WhittleError('INVALID_ARGUMENT', `--port must be an integer 0..65535, got '${values.port}'`);
  const models = values.models !== undefined ? resolve(values.models) : existsSync('public/models') ? resolve('public/models') : null;
  if (models !== null && !existsSync(join(models, 'manifests.json')))
    throw new WhittleError('INVALID_ARGUMENT', `--models ${models} has no manifests.json (a folder as 'npm run models' writes it)`);
  const { server, origin } = await serveConformance({ port, host: values.host, models });
  console.log(`Whittle conformance page: ${origin}/`);
  if (values.host === '0.0.0.0') {
    const lan = Object.values(networkInterfaces())
      .flat()
      .filter((a) => a && a.family === 'IPv4' && !a.internal);
    for (const a of lan)
      console.log(
        `  on your network: http://${a!.address}:${(server.address() as AddressInfo).port}/ (WebGPU and OPFS need a secure context: forward the port to the phone's localhost or use https)`,
      );
  }
  console.log(
    models
      ? `models from ${models}`
      : 'no models folder (--models): the model checks will fail to load; the probe, storage checks still run',
  );
  console.log('query: ?backends=webgpu,wasm&models=/models/   (Ctrl-C to stop)');
  await new Promise<void>((done) => {
    const stop = () => {
      server.close(() => done());
      server.closeAllConnections(); // browsers keep connections alive; close() alone would wait for them
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
