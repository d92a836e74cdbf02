/**
 * The library build: turns the TypeScript tree into the `whittle` package's `dist/`.
 *
 *   dist/index.js (+ chunks)      main-thread entry (sdk/index.ts); no onnxruntime-web in it
 *   dist/workers/<name>.worker.js one self-contained file per worker (onnxruntime's JS inlined)
 *   dist/worklets/<name>.js       the live codec's AudioWorklet processors
 *   dist/ort/                     onnxruntime-web's glue + wasm, loaded by the workers
 *   dist/vite.js, dist/cli.js     Node: the `whittle/vite` plugin and the `whittle` bin
 *   dist/playwright.js            Node: the `whittle/playwright` preset (@playwright/test stays an import)
 *   dist/playwright-page.js       the preset's browser half (probe, model store import), one IIFE script
 *   dist/conformance.{html,js}    the conformance page (`whittle conformance` serves it), dependencies inlined
 *   dist/conformance.report.schema.json  the JSON Schema of its report
 *   dist/types/                   .d.ts for the public entries
 *
 * Why this shape (see README's design section): consumers' bundlers (Vite, webpack 5, Rollup,
 * esbuild) all understand `new Worker(new URL('./x.js', import.meta.url))` and
 * `new URL('./file', import.meta.url)`, so workers and runtime files need no configuration.
 * Workers are self-contained (no chunks, no dynamic imports left) because bundlers differ on
 * code splitting inside workers (Vite's default IIFE worker format cannot split at all), and
 * because onnxruntime's JS must be its *non-bundled* build (the `onnxruntime-web-use-extern-wasm`
 * condition), which only this build can select: a consumer's bundler would pick the build with
 * the glue inlined, whose pthread workers would start the app's chunk.
 *
 * Usage: tsx scripts/build-lib.ts   (npm run build:lib; `npm pack` runs it through `prepack`)
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown, type Plugin, type InputOptions, type OutputOptions } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; peerDependencies?: Record<string, string> };

const WORKERS = ['text', 'codec', 'head'] as const;
const WORKLETS = ['capture', 'playback'] as const;
const ORT_DIST = join(root, 'node_modules/onnxruntime-web/dist');
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];

/** Bare imports that stay imports in the main-thread and Node builds (the package's dependencies). */
const dependencies = [...Object.keys(pkg.dependencies), ...Object.keys(pkg.peerDependencies ?? {}), 'vite'];
const isDependency = (id: string) => dependencies.some((d) => id === d || id.startsWith(`${d}/`));
const isNodeBuiltin = (id: string) => id.startsWith('node:') || builtinModules.includes(id);

/**
 * Rewrites the source tree's worker and worklet references to where the files land in dist/.
 * Source: `new URL('../../workers/text.worker.ts', import.meta.url)` (Vite dev serves it);
 * dist:   `new URL('./workers/text.worker.js', import.meta.url)` (all main-thread chunks sit in dist/).
 */
function distReferences(): Plugin {
  return {
    name: 'whittle-dist-references',
    resolveId(source, importer) {
      // `import url from './capture.worklet.ts?worker&url'` is Vite's syntax; in dist it becomes a URL literal.
      const m = /([\w-]+)\.worklet\.ts\?worker&url$/.exec(source);
      if (m && importer) return `\0worklet-url:${m[1]}`;
      return null;
    },
    load(id) {
      const m = /^\0worklet-url:([\w-]+)$/.exec(id);
      return m ? `export default new URL('./worklets/${m[1]}.worklet.js', import.meta.url).href;` : null;
    },
    transform(code) {
      const out = code.replace(/new URL\((['"])(?:\.\.\/)+workers\/([\w-]+)\.worker\.ts\1, import\.meta\.url\)/g, "new URL('./workers/$2.worker.js', import.meta.url)");
      return out === code ? null : { code: out, map: null };
    },
  };
}

/**
 * In worker builds: onnxruntime's runtime files are referenced from dist/ort/ (workers/ort/files.ts),
 * and onnxruntime's own `new URL("ort.*.mjs", import.meta.url)` (its file:// fallback, never taken
 * in a browser) is hidden from consumers' bundlers, which would otherwise try to copy a file
 * that does not exist next to the worker (webpack fails the build on it).
 */
function ortReferences(): Plugin {
  return {
    name: 'whittle-ort-references',
    transform(code, id) {
      if (/onnxruntime-web[\\/]dist[\\/]ort\.[\w.]*\.mjs$/.test(id)) {
        const out = code.replace(/(\(\s*["'`]ort\.[\w.]*\.mjs["'`]\s*,\s*)import\.meta\.url/g, '$1"" + import.meta.url');
        return out === code ? null : { code: out, map: null };
      }
      if (!id.endsWith('workers/ort/files.ts')) return null;
      const out = code.replace(/(['"])(?:\.\.\/)+node_modules\/onnxruntime-web\/dist\/([\w.-]+)\1/g, (_m, q: string, file: string) => {
        if (!ORT_FILES.includes(file)) throw new Error(`workers/ort/files.ts references ${file}, which the build does not ship`);
        return `${q}../ort/${file}${q}`;
      });
      return { code: out, map: null };
    },
  };
}

async function build(input: InputOptions, output: OutputOptions): Promise<void> {
  const bundle = await rolldown({ logLevel: 'warn', ...input });
  await bundle.write({ format: 'esm', dir: dist, ...output });
  await bundle.close();
}

/** The main thread: dependencies stay imports so the app's bundler dedupes them. */
async function buildMain(): Promise<void> {
  await build(
    {
      input: { index: join(root, 'sdk/index.ts') },
      platform: 'browser',
      external: (id) => isDependency(id),
      plugins: [distReferences()],
    },
    { entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
  );
}

/** One self-contained file per worker or worklet. */
async function buildSelfContained(entry: string, fileName: string, plugins: Plugin[]): Promise<void> {
  await build(
    {
      input: join(root, entry),
      platform: 'browser',
      resolve: { conditionNames: ['onnxruntime-web-use-extern-wasm', 'import', 'module', 'browser', 'default'] },
      plugins,
    },
    { file: join(dist, fileName), dir: undefined, codeSplitting: false },
  );
}

/** Node: the Vite plugin, the CLI and the Playwright preset, with dependencies resolved from node_modules at run time. */
async function buildNode(): Promise<void> {
  await build(
    {
      input: { vite: join(root, 'sdk/vite.ts'), cli: join(root, 'sdk/cli/main.ts'), playwright: join(root, 'sdk/playwright.ts') },
      platform: 'node',
      // rolldown: the preset bundles its page script with it only in a source checkout (never from dist/).
      external: (id) => isDependency(id) || isNodeBuiltin(id) || id === 'rolldown',
    },
    { entryFileNames: '[name].js', chunkFileNames: 'node-[name]-[hash].js', banner: (chunk) => (chunk.name === 'cli' ? '#!/usr/bin/env node' : '') },
  );
}

/**
 * The preset's browser half: injected into a page as one classic script (page.addScriptTag), so
 * an IIFE with everything inlined; sdk/playwright/page-source.ts reads it from beside itself.
 */
async function buildPlaywrightPage(): Promise<void> {
  await build(
    { input: join(root, 'sdk/playwright/page-helpers.ts'), platform: 'browser' },
    { format: 'iife', file: join(dist, 'playwright-page.js'), dir: undefined, codeSplitting: false },
  );
}

/**
 * The conformance page: its script with the SDK and its dependencies inlined (a browser loads it
 * with no bundler), beside the workers it starts (./workers/*.worker.js), and its report's schema.
 */
async function buildConformancePage(): Promise<void> {
  await build(
    { input: join(root, 'sdk/conformance/page.ts'), platform: 'browser', plugins: [distReferences()] },
    { file: join(dist, 'conformance.js'), dir: undefined, codeSplitting: false },
  );
  const html = readFileSync(join(root, 'sdk/conformance/index.html'), 'utf8');
  if (!html.includes('src="./page.ts"')) throw new Error('sdk/conformance/index.html no longer loads ./page.ts');
  writeFileSync(join(dist, 'conformance.html'), html.replace('src="./page.ts"', 'src="./conformance.js"'));
  const { CONFORMANCE_REPORT_SCHEMA } = await import('../sdk/conformance/report.ts');
  writeFileSync(join(dist, 'conformance.report.schema.json'), `${JSON.stringify(CONFORMANCE_REPORT_SCHEMA, null, 2)}\n`);
}

/** .d.ts for the public entries, with `.ts` specifiers rewritten to `.js` so every resolver finds them. */
function buildTypes(): void {
  const outDir = join(dist, 'types');
  execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'tsconfig.build.json'), '--outDir', outDir], { stdio: 'inherit' });
  const walk = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? walk(join(dir, n)) : [join(dir, n)]));
  for (const file of walk(outDir).filter((f) => f.endsWith('.d.ts'))) {
    const text = readFileSync(file, 'utf8');
    const fixed = text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+?)\.ts(['"])/g, '$1$2.js$3');
    if (fixed !== text) writeFileSync(file, fixed);
  }
}

function copyRuntimeFiles(): void {
  mkdirSync(join(dist, 'ort'), { recursive: true });
  for (const f of ORT_FILES) copyFileSync(join(ORT_DIST, f), join(dist, 'ort', f));
}

const started = performance.now();
rmSync(dist, { recursive: true, force: true });
await buildMain();
for (const w of WORKERS) await buildSelfContained(`workers/${w}.worker.ts`, `workers/${w}.worker.js`, [ortReferences()]);
for (const w of WORKLETS) await buildSelfContained(`sdk/live/${w}.worklet.ts`, `worklets/${w}.worklet.js`, []);
await buildNode();
await buildPlaywrightPage();
await buildConformancePage();
chmodSync(join(dist, 'cli.js'), 0o755);
copyRuntimeFiles();
buildTypes();
console.log(`dist/ built in ${((performance.now() - started) / 1000).toFixed(1)} s: ${relative(root, dist)}`);
