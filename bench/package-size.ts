/**
 * Package size and main-thread weight: Whittle side by side with transformers.js and WebLLM.
 *
 *   tsx bench/package-size.ts [--json]
 *
 * 1. Builds and packs Whittle (`npm run build:lib`, `npm pack --json`): tarball and unpacked size,
 *    and the installed size of `npm install <tarball>` in an empty project (sum of file sizes in
 *    node_modules, i.e. with its dependencies), by package. The peers are installed the same way.
 * 2. Creates the same minimal Vite app for each library (create the engine, load a text model by
 *    URL/id, stream a completion; only the library's documented public API) and builds it for
 *    production with Vite 8.
 * 3. Measures what each build's main thread loads before a model loads: the `<script
 *    type="module">` and `<link rel="modulepreload">` of dist/index.html and everything they
 *    import *statically*, transitively (not dynamic `import()`, not workers, not .wasm): bytes raw
 *    and gzip (level 9, per file, summed). Separately: all JS emitted (workers and lazy chunks
 *    included) and all wasm emitted.
 *
 * Everything happens in a temporary folder (WHITTLE_SIZE_DIR, default /tmp/whittle-size), outside
 * the repository, so no resolution falls back to the repo's node_modules. Prints a table; with
 * --json, ONE JSON object on the last line of stdout. Progress and tool output go to stderr.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { parseAst } from 'vite';

const { values: args } = parseArgs({ options: { json: { type: 'boolean', default: false } } });

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
const WORK = process.env.WHITTLE_SIZE_DIR ?? '/tmp/whittle-size';
const VITE = 'vite@8.3.8';
const TRANSFORMERS = '@huggingface/transformers@4.3.2';
const WEBLLM = '@mlc-ai/web-llm@latest';
const GOAL = 1 / 3;

/** A Hugging Face text model each app loads (the model does not change what the build ships). */
const HF_MODEL = 'HuggingFaceTB/SmolLM2-135M-Instruct';
const MLC_MODEL = 'SmolLM2-135M-Instruct-q0f16-MLC';

const log = (line: string) => console.error(`[package-size] ${line}`);

// ---------------------------------------------------------------------------------------------
// Processes

function sh(cmd: string, argv: string[], cwd: string): string {
  const r = spawnSync(cmd, argv, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    // onnxruntime-node (a transformers.js dependency) downloads CUDA binaries from outside npm in
    // its postinstall; skipped, so its installed size is what npm itself delivers.
    env: {
      ...process.env,
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
      ONNXRUNTIME_NODE_INSTALL: 'skip',
    },
  });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    const tail = `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`${cmd} ${argv.join(' ')} (in ${cwd}) exited ${r.status}:\n${tail}`);
  }
  return r.stdout;
}

const npmInstall = (dir: string, specs: string[], dev = false) =>
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...(dev ? ['--save-dev'] : []), ...specs], dir);

// ---------------------------------------------------------------------------------------------
// Sizes

interface Size {
  bytes: number;
  gzip: number;
}
const gz = (buf: Buffer) => gzipSync(buf, { level: 9 }).length;

function walkFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) out.push(...walkFiles(p));
    else if (st.isFile()) out.push(p);
  }
  return out;
}

export interface InstalledSize {
  /** Sum of the sizes of the regular files under node_modules (symlinks and directories not counted). */
  bytes: number;
  files: number;
  packages: number;
  /** Top-level packages (nested node_modules counted under their owner), largest first. */
  largest: { name: string; bytes: number }[];
}

function installedSize(nodeModules: string, top = 8): InstalledSize {
  const byPackage = new Map<string, number>();
  let bytes = 0;
  let files = 0;
  for (const file of walkFiles(nodeModules)) {
    const parts = relative(nodeModules, file).split(sep);
    const name =
      parts[0]!.startsWith('@') && parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts.length > 1 ? parts[0]! : '(npm metadata)';
    const size = lstatSync(file).size;
    byPackage.set(name, (byPackage.get(name) ?? 0) + size);
    bytes += size;
    files++;
  }
  const all = [...byPackage].filter(([n]) => n !== '.bin' && n !== '(npm metadata)');
  const largest = all
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, b]) => ({ name, bytes: b }));
  return { bytes, files, packages: all.length, largest };
}

// ---------------------------------------------------------------------------------------------
// The main thread of a built app: index.html's module scripts and modulepreloads, then static imports

/** Specifiers of a module's static imports (`import … from`, bare `import '…'`, `export … from`). */
export function staticImports(code: string, filename: string): string[] {
  const program = parseAst(code, { lang: 'js', sourceType: 'module' }, filename);
  const out: string[] = [];
  for (const node of program.body) {
    if (
      (node.type === 'ImportDeclaration' || node.type === 'ExportAllDeclaration' || node.type === 'ExportNamedDeclaration') &&
      node.source
    )
      out.push(node.source.value);
  }
  return out;
}

export interface MainThread extends Size {
  files: { file: string; bytes: number; gzip: number }[];
  /** Specifiers that do not resolve to a file of the build (bare names, other origins). */
  unresolved: string[];
}

/**
 * Resolves a URL path or relative specifier against `from` (a path relative to dist, posix), as a
 * browser would with base '/': '/assets/x.js' is dist/assets/x.js.
 */
function resolveInDist(spec: string, from: string): string | null {
  if (/^[a-z][a-z\d+.-]*:/i.test(spec) || spec.startsWith('//')) return null; // another origin, data:, blob:
  const path = spec.split(/[?#]/)[0]!;
  if (path.startsWith('/')) return posix.normalize(path.slice(1));
  if (path.startsWith('./') || path.startsWith('../')) return posix.normalize(posix.join(posix.dirname(from), path));
  return null; // a bare specifier: not loadable by a browser without an import map
}

const attr = (tag: string, name: string) =>
  new RegExp(`\\s${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s>]+))`, 'i')
    .exec(tag)
    ?.slice(1)
    .find((v) => v !== undefined);

/** What the page at dist/<html> loads on its main thread before any user action. */
export function mainThread(dist: string, html = 'index.html'): MainThread {
  const page = readFileSync(join(dist, html), 'utf8');
  const roots: string[] = [];
  const unresolved: string[] = [];
  const inline: string[] = [];
  for (const m of page.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/gi)) {
    if (attr(m[1]!, 'type')?.toLowerCase() !== 'module') continue;
    const src = attr(m[1]!, 'src');
    if (src !== undefined) roots.push(src);
    else inline.push(m[2]!);
  }
  for (const m of page.matchAll(/<link\b[^>]*>/gi)) {
    if (attr(m[0], 'rel')?.toLowerCase() === 'modulepreload') roots.push(attr(m[0], 'href') ?? '');
  }
  for (const code of inline) roots.push(...staticImports(code, html));

  const seen = new Set<string>();
  const queue: string[] = [];
  const visit = (spec: string, from: string) => {
    const file = resolveInDist(spec, from);
    if (file === null || !existsSync(join(dist, file))) return void unresolved.push(spec);
    if (!seen.has(file)) {
      seen.add(file);
      queue.push(file);
    }
  };
  for (const r of roots) visit(r, html);
  while (queue.length) {
    const file = queue.shift()!;
    if (!/\.m?js$/.test(file)) continue; // CSS etc. are counted but not walked
    for (const spec of staticImports(readFileSync(join(dist, file), 'utf8'), file)) visit(spec, file);
  }
  const files = [...seen].sort().map((file) => {
    const buf = readFileSync(join(dist, file));
    return { file, bytes: buf.length, gzip: gz(buf) };
  });
  return { bytes: sum(files.map((f) => f.bytes)), gzip: sum(files.map((f) => f.gzip)), files, unresolved };
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

/** The walker on a hand-made build whose answer is known; throws if it disagrees. */
function selfTest(): void {
  const dir = join(WORK, 'selftest');
  rmSync(dir, { recursive: true, force: true });
  const files: Record<string, string> = {
    'index.html': `<!doctype html><html><head>
      <script type="module" crossorigin src="/assets/entry.js"></script>
      <link rel="modulepreload" crossorigin href="/assets/pre.js">
      <link rel="stylesheet" href="/assets/style.css">
      <script src="/assets/classic.js"></script>
      <script type="module">import './assets/inline-dep.js';</script>
    </head><body><script type='module' src='./assets/entry.js'></script></body></html>`,
    'assets/entry.js': `import{a as A}from"./a.js";import"./b.js";export*from"./c.js";export{y}from"/assets/sub/y.js";
      const s='import "./fake.js"';/* import "./comment.js" */const lazy=()=>import("./lazy.js");
      const w=new Worker(new URL("./w.js",import.meta.url),{type:"module"});const u=new URL("./x.wasm",import.meta.url);
      import{bare}from"some-package";console.log(A,s,lazy,w,u,bare);`,
    'assets/a.js': `import"./entry.js";export const a=1;`,
    'assets/b.js': `export{x}from"./d.js";`,
    'assets/c.js': `export const c=1;`,
    'assets/d.js': `export const x=1;`,
    'assets/sub/y.js': `import"../d.js";import"./z.js";export const y=1;`,
    'assets/sub/z.js': `export{};`,
    'assets/pre.js': `export{};`,
    'assets/inline-dep.js': `export{};`,
    'assets/lazy.js': `import"./lazy-dep.js";`,
    'assets/lazy-dep.js': `export{};`,
    'assets/w.js': `import"./w-dep.js";`,
    'assets/w-dep.js': `export{};`,
    'assets/fake.js': `export{};`,
    'assets/comment.js': `export{};`,
    'assets/classic.js': `1;`,
    'assets/x.wasm': `\0asm`,
  };
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  const got = mainThread(dir);
  const want = [
    'assets/a.js',
    'assets/b.js',
    'assets/c.js',
    'assets/d.js',
    'assets/entry.js',
    'assets/inline-dep.js',
    'assets/pre.js',
    'assets/sub/y.js',
    'assets/sub/z.js',
  ];
  const names = got.files.map((f) => f.file);
  if (JSON.stringify(names) !== JSON.stringify(want) || JSON.stringify(got.unresolved) !== JSON.stringify(['some-package'])) {
    throw new Error(
      `static-import walker self-test failed:\n got ${JSON.stringify(names)} unresolved ${JSON.stringify(got.unresolved)}\nwant ${JSON.stringify(want)} unresolved ["some-package"]`,
    );
  }
  const expectBytes = sum(want.map((f) => Buffer.byteLength(files[f]!)));
  if (got.bytes !== expectBytes) throw new Error(`static-import walker self-test: ${got.bytes} bytes, want ${expectBytes}`);
  rmSync(dir, { recursive: true, force: true });
  log(`static-import walker self-test passed (${want.length} of ${Object.keys(files).length - 1} files reached)`);
}

// ---------------------------------------------------------------------------------------------
// The apps

interface AppSpec {
  /** Key in the report. */
  key: string;
  title: string;
  /** What `npm install` gets (the library). */
  install: () => string[];
  viteConfig: string;
  files: Record<string, string>;
}

const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>minimal text app</title></head>
  <body>
    <pre id="out"></pre>
    <script type="module" src="./main.js"></script>
  </body>
</html>
`;

/**
 * The same app for each library: create the engine, load a small text model, stream a
 * completion into the page. Each uses only its library's documented public API.
 */
function appSpecs(tarball: string): AppSpec[] {
  return [
    {
      key: 'whittle',
      title: 'Whittle',
      install: () => [tarball],
      // whittle/vite: the documented setup (README quick start).
      viteConfig: `import { defineConfig } from 'vite';\nimport whittle from 'whittle/vite';\n\nexport default defineConfig({ plugins: [whittle()] });\n`,
      files: {
        'main.js': `import { Whittle } from 'whittle';

const out = document.querySelector('#out');
async function main() {
  const w = await Whittle.create();
  const lm = await w.text({ url: 'https://huggingface.co/${HF_MODEL}/resolve/main/', integrity: 'none' });
  for await (const ev of lm.generate('Once upon a time', { maxTokens: 64 })) {
    if (ev.type === 'token') out.textContent += ev.text;
  }
}
main().catch((e) => (out.textContent = String(e)));
`,
      },
    },
    {
      key: 'transformersjs',
      title: 'transformers.js',
      install: () => [TRANSFORMERS],
      // transformers.js' documented Vite setup: keep it out of dev pre-bundling (dev only; the
      // production build is the same with or without it).
      viteConfig: `import { defineConfig } from 'vite';\n\nexport default defineConfig({ optimizeDeps: { exclude: ['@huggingface/transformers'] } });\n`,
      files: {
        'main.js': `import { pipeline, TextStreamer } from '@huggingface/transformers';

const out = document.querySelector('#out');
async function main() {
  const generator = await pipeline('text-generation', '${HF_MODEL}');
  const streamer = new TextStreamer(generator.tokenizer, { skip_prompt: true, callback_function: (text) => (out.textContent += text) });
  await generator('Once upon a time', { max_new_tokens: 64, streamer });
}
main().catch((e) => (out.textContent = String(e)));
`,
      },
    },
    {
      key: 'webllm',
      title: 'WebLLM (CreateMLCEngine)',
      install: () => [WEBLLM],
      viteConfig: `import { defineConfig } from 'vite';\n\nexport default defineConfig({});\n`,
      files: {
        'main.js': `import { CreateMLCEngine } from '@mlc-ai/web-llm';

const out = document.querySelector('#out');
async function main() {
  const engine = await CreateMLCEngine('${MLC_MODEL}');
  const chunks = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 64, stream: true });
  for await (const chunk of chunks) out.textContent += chunk.choices[0]?.delta.content ?? '';
}
main().catch((e) => (out.textContent = String(e)));
`,
      },
    },
    {
      key: 'webllmWorker',
      title: 'WebLLM (CreateWebWorkerMLCEngine)',
      install: () => [WEBLLM],
      // Workers as ES modules, as Whittle's plugin sets for its own workers.
      viteConfig: `import { defineConfig } from 'vite';\n\nexport default defineConfig({ worker: { format: 'es' } });\n`,
      files: {
        'main.js': `import { CreateWebWorkerMLCEngine } from '@mlc-ai/web-llm';

const out = document.querySelector('#out');
async function main() {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const engine = await CreateWebWorkerMLCEngine(worker, '${MLC_MODEL}');
  const chunks = await engine.chat.completions.create({ messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 64, stream: true });
  for await (const chunk of chunks) out.textContent += chunk.choices[0]?.delta.content ?? '';
}
main().catch((e) => (out.textContent = String(e)));
`,
        'worker.js': `import { WebWorkerMLCEngineHandler } from '@mlc-ai/web-llm';

const handler = new WebWorkerMLCEngineHandler();
self.onmessage = (msg) => handler.onmessage(msg);
`,
      },
    },
  ];
}

export interface AppReport {
  title: string;
  /** Library version as installed. */
  version: string;
  mainThread: MainThread;
  /** Every .js/.mjs file the build emitted (main thread, lazy chunks, workers, runtime glue). */
  js: Size & { count: number };
  /** Every .wasm file the build emitted. */
  wasm: Size & { count: number };
  /** Everything in dist/. */
  dist: { bytes: number; count: number };
  /** Hosts of absolute https:// URLs in the emitted JS (where the library may fetch code or models from). */
  urlHosts: string[];
  /** The app's own source, for the record. */
  source: Record<string, string>;
}

function sizeOf(files: string[]): Size & { count: number } {
  const bufs = files.map((f) => readFileSync(f));
  return { count: files.length, bytes: sum(bufs.map((b) => b.length)), gzip: sum(bufs.map(gz)) };
}

function buildApp(spec: AppSpec, installDir: string, pkgName: string): AppReport {
  const dir = installDir; // the library is already installed here (measured first); add Vite and build
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ ...readJson(join(dir, 'package.json')), scripts: { build: 'vite build' } }, null, 2),
  );
  npmInstall(dir, [VITE], true);
  writeFileSync(join(dir, 'index.html'), INDEX_HTML);
  writeFileSync(join(dir, 'vite.config.js'), spec.viteConfig);
  for (const [name, text] of Object.entries(spec.files)) writeFileSync(join(dir, name), text);
  log(`${spec.key}: vite build`);
  sh('npm', ['run', '--silent', 'build'], dir);
  const dist = join(dir, 'dist');
  const all = walkFiles(dist);
  const jsFiles = all.filter((f) => /\.m?js$/.test(f));
  const hosts = new Set<string>();
  for (const f of jsFiles)
    for (const m of readFileSync(f, 'utf8').matchAll(/https:\/\/([a-z\d.-]+\.[a-z]{2,})/gi)) hosts.add(m[1]!.toLowerCase());
  return {
    title: spec.title,
    version: (readJson(join(dir, 'node_modules', pkgName, 'package.json')) as { version: string }).version,
    mainThread: mainThread(dist),
    js: sizeOf(jsFiles),
    wasm: sizeOf(all.filter((f) => f.endsWith('.wasm'))),
    dist: { bytes: sum(all.map((f) => lstatSync(f).size)), count: all.length },
    urlHosts: [...hosts].sort(),
    source: { 'vite.config.js': spec.viteConfig, ...spec.files },
  };
}

const readJson = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Whittle's package

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string; size: number }[];
}

function packWhittle(): { tarball: string; pack: PackResult } {
  log('npm run build:lib');
  sh('npm', ['run', '--silent', 'build:lib'], repo);
  const packDir = join(WORK, 'pack');
  mkdirSync(packDir, { recursive: true });
  log('npm pack');
  const pack = (JSON.parse(sh('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', packDir], repo)) as PackResult[])[0]!;
  return { tarball: join(packDir, pack.filename), pack };
}

/** Tarball contents grouped by folder (dist/ort, dist/workers, …), unpacked bytes, largest first. */
function packBreakdown(pack: PackResult): { path: string; bytes: number; files: number }[] {
  const groups = new Map<string, { bytes: number; files: number }>();
  for (const f of pack.files) {
    const parts = f.path.split('/');
    const key = parts.length > 2 ? `${parts[0]}/${parts[1]}/` : parts.length === 2 ? `${parts[0]}/ (top-level files)` : f.path;
    const g = groups.get(key) ?? { bytes: 0, files: 0 };
    g.bytes += f.size;
    g.files++;
    groups.set(key, g);
  }
  return [...groups].map(([path, g]) => ({ path, ...g })).sort((a, b) => b.bytes - a.bytes);
}

// ---------------------------------------------------------------------------------------------
// Report

const kb = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

/** A markdown table; columns named in `left` (and the first) are left-aligned, the rest right-aligned. */
function table(headers: string[], rows: string[][], left: string[] = []): string {
  const isLeft = headers.map((h, i) => i === 0 || left.includes(h));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => (isLeft[i] ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  return [
    line(headers),
    `|${widths.map((w, i) => (isLeft[i] ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.map(line),
  ].join('\n');
}

interface LibraryReport {
  install?: InstalledSize & { spec: string };
  app?: AppReport;
  error?: string;
}

async function main(): Promise<void> {
  rmSync(WORK, { recursive: true, force: true });
  mkdirSync(WORK, { recursive: true });
  selfTest();

  const { tarball, pack } = packWhittle();
  const libs: { spec: AppSpec; pkgName: string }[] = appSpecs(tarball).map((spec) => ({
    spec,
    pkgName: spec.key === 'whittle' ? 'whittle' : spec.key === 'transformersjs' ? '@huggingface/transformers' : '@mlc-ai/web-llm',
  }));

  const reports: Record<string, LibraryReport> = {};
  for (const { spec, pkgName } of libs) {
    const report: LibraryReport = {};
    reports[spec.key] = report;
    const dir = join(WORK, `app-${spec.key}`);
    try {
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: `size-${spec.key.toLowerCase()}`, private: true, type: 'module' }, null, 2),
      );
      log(`${spec.key}: npm install ${spec.install().join(' ')}`);
      npmInstall(dir, spec.install());
      report.install = {
        spec: spec
          .install()
          .map((s) => (s === tarball ? relative(WORK, s) : s))
          .join(' '),
        ...installedSize(join(dir, 'node_modules')),
      };
      report.app = buildApp(spec, dir, pkgName);
      log(
        `${spec.key}: main thread ${kb(report.app.mainThread.bytes)} (${kb(report.app.mainThread.gzip)} gzip) in ${report.app.mainThread.files.length} files`,
      );
    } catch (e) {
      report.error = e instanceof Error ? e.message : String(e);
      log(`${spec.key}: FAILED: ${report.error}`);
    }
  }

  const whittle = reports.whittle!;
  const peers = Object.entries(reports).filter(([k, r]) => k !== 'whittle' && r.app);
  const smallest = peers.sort((a, b) => a[1].app!.mainThread.gzip - b[1].app!.mainThread.gzip)[0];
  const ratio = whittle.app && smallest ? whittle.app.mainThread.gzip / smallest[1].app!.mainThread.gzip : null;
  const ratios = {
    mainThreadGzipVsSmallestPeer: ratio,
    smallestPeer: smallest?.[0] ?? null,
    goal: GOAL,
    goalMet: ratio === null ? null : ratio <= GOAL,
    mainThreadGzipVsPeer: Object.fromEntries(
      peers.map(([k, r]) => [k, whittle.app ? whittle.app.mainThread.gzip / r.app!.mainThread.gzip : null]),
    ),
  };
  const versions = {
    whittle: whittle.app?.version ?? pack.filename,
    transformersjs: reports.transformersjs?.app?.version ?? null,
    webllm: reports.webllm?.app?.version ?? reports.webllmWorker?.app?.version ?? null,
    vite: VITE.split('@')[1],
    node: process.versions.node,
    npm: sh('npm', ['--version'], WORK).trim(),
  };

  // ---- human-readable
  const out: string[] = [];
  out.push(`Whittle package (${pack.filename})`);
  out.push(
    table(
      ['', 'bytes', ''],
      [
        ['tarball (npm pack size)', String(pack.size), kb(pack.size)],
        ['unpacked (npm pack unpackedSize)', String(pack.unpackedSize), kb(pack.unpackedSize)],
        ...(whittle.install
          ? [[`installed (node_modules, ${whittle.install.packages} packages)`, String(whittle.install.bytes), kb(whittle.install.bytes)]]
          : []),
      ],
    ),
  );
  out.push('', 'Tarball contents (unpacked) by folder');
  out.push(
    table(
      ['path', 'files', 'bytes'],
      packBreakdown(pack).map((g) => [g.path, String(g.files), kb(g.bytes)]),
    ),
  );
  out.push('', 'Installed size (npm install <library> in an empty project), largest packages');
  out.push(
    table(
      ['library', 'installed', 'packages', 'largest'],
      Object.entries(reports)
        .filter(([k, r]) => r.install && k !== 'webllmWorker')
        .map(([k, r]) => [
          k,
          kb(r.install!.bytes),
          String(r.install!.packages),
          r
            .install!.largest.slice(0, 4)
            .map((p) => `${p.name} ${kb(p.bytes)}`)
            .join(', '),
        ]),
      ['largest'],
    ),
  );
  out.push('', 'Production build of the same minimal Vite app');
  out.push(
    table(
      ['app', 'main thread files', 'main thread', 'main thread gzip', 'all JS', 'all JS gzip', 'wasm', 'dist total'],
      Object.values(reports).map((r) =>
        r.app
          ? [
              `${r.app.title} ${r.app.version}`,
              String(r.app.mainThread.files.length),
              kb(r.app.mainThread.bytes),
              kb(r.app.mainThread.gzip),
              `${kb(r.app.js.bytes)} (${r.app.js.count})`,
              kb(r.app.js.gzip),
              `${kb(r.app.wasm.bytes)} (${r.app.wasm.count})`,
              kb(r.app.dist.bytes),
            ]
          : ['(failed)', r.error?.split('\n')[0] ?? '', '', '', '', '', '', ''],
      ),
    ),
  );
  out.push('');
  out.push(
    ratio === null
      ? 'ratio: not computed (an app failed)'
      : `Whittle main-thread gzip / smallest peer's (${ratios.smallestPeer}): ${ratio.toFixed(3)} (goal <= ${GOAL.toFixed(3)}: ${ratios.goalMet ? 'met' : 'NOT met'})`,
  );
  console.log(out.join('\n'));

  if (args.json) {
    const strip = (r: LibraryReport | undefined) => r && { ...r };
    console.log(
      JSON.stringify({
        whittle: {
          pack: {
            filename: pack.filename,
            size: pack.size,
            unpackedSize: pack.unpackedSize,
            entryCount: pack.entryCount,
            byFolder: packBreakdown(pack),
          },
          ...strip(whittle),
        },
        transformersjs: strip(reports.transformersjs),
        webllm: { ...strip(reports.webllm), worker: strip(reports.webllmWorker) },
        ratios,
        versions,
      }),
    );
  }
}

await main();
