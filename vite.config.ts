/**
 * One Vite config for the demos, the e2e harness pages and production builds.
 *
 * - COOP/COEP on every response: pages are cross-origin isolated, so onnxruntime-web can
 *   use WASM threads (SharedArrayBuffer).
 * - the repo dogfoods `whittle/vite` (sdk/vite.ts) and imports 'whittle' as an app would, from
 *   source; onnxruntime-web's runtime files are found by workers/ort/files.ts (`new URL` into
 *   node_modules, which this server serves), and the non-bundled ORT entry is used (the
 *   `onnxruntime-web-use-extern-wasm` condition): ORT's pthread workers then load ORT's own
 *   glue, never an app chunk (which would hang). The package build makes the same choice.
 */
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultClientConditions, defineConfig, type Plugin, type ViteDevServer } from 'vite';
import { e2eFixtures } from './e2e/fixture-server.ts';
import whittle from './sdk/vite.ts';

const root = dirname(fileURLToPath(import.meta.url));
/** Dev-only static folders for benchmarks: the peers' own runtimes, never app code. */
const benchDirs: Record<string, string> = {
  '/tflite/': join(root, 'node_modules/@tensorflow/tfjs-tflite/wasm'),
  '/ort-peer/': join(root, 'node_modules/@huggingface/transformers/node_modules/onnxruntime-web/dist'),
};

const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Serves runtime files (.mjs/.js/.wasm) that `allowed` accepts from `dir` under `prefix`, with isolation headers. */
function serveRuntimeFiles(server: ViteDevServer, prefix: string, dir: string, allowed: (name: string) => boolean): void {
  server.middlewares.use(prefix, (req, res, next) => {
    const name = (req.url ?? '').split('?')[0]!.replace(/^\//, '');
    if (!allowed(name)) return next();
    res.setHeader('content-type', name.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
    for (const [k, v] of Object.entries(isolationHeaders)) res.setHeader(k, v);
    res.end(readFileSync(join(dir, name)));
  });
}

/** Dev-only: the benchmark peers' runtimes (transformers.js's own onnxruntime, the TFLite oracle). */
function benchRuntimes(): Plugin {
  return {
    name: 'whittle-bench-runtimes',
    configureServer(server) {
      for (const [prefix, dir] of Object.entries(benchDirs)) {
        serveRuntimeFiles(server, prefix, dir, (name) => /^[\w.-]+\.(m?js|wasm)$/.test(name) && existsSync(join(dir, name)));
      }
    },
  };
}

const pages = ['index.html', 'demos/playground/index.html', 'demos/codec/index.html', 'e2e/pages/harness.html'];

export default defineConfig({
  root,
  plugins: [whittle({ crossOriginIsolation: true }), benchRuntimes(), ...(process.env.WHITTLE_E2E ? [e2eFixtures(join(root, 'public/models'))] : [])],
  resolve: {
    // Demos, e2e pages and benchmarks import 'whittle' like an app does; here it is the source entry.
    alias: [{ find: /^whittle$/, replacement: join(root, 'sdk/index.ts') }],
    conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  optimizeDeps: { exclude: ['onnxruntime-web'] },
  worker: { format: 'es' },
  server: {
    host: '127.0.0.1',
    headers: isolationHeaders,
    // A git worktree may link node_modules and public/models to a main checkout: allow their real
    // folders too, or strict mode refuses onnxruntime's files there.
    fs: { strict: true, allow: [root, ...['node_modules', 'public/models'].map((d) => join(root, d)).filter(existsSync).map((d) => realpathSync(d))] },
    // Tests and benchmarks must not be reloaded by a file edited meanwhile.
    ...(process.env.WHITTLE_E2E || process.env.WHITTLE_BENCH ? { hmr: false, watch: null } : {}),
  },
  preview: { host: '127.0.0.1', headers: isolationHeaders },
  build: {
    target: 'es2022',
    rollupOptions: { input: Object.fromEntries(pages.map((p) => [p.replace(/\/?index\.html$|\.html$/g, '') || 'main', resolve(root, p)])) },
  },
});
