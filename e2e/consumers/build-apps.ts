/**
 * Builds the consumer apps the way a user would: `npm pack` this package, create fresh apps in
 * a temporary folder, `npm install` the tarball there, build each for production. Nothing of
 * this repository is visible to the apps but the tarball (and the model files they serve).
 *
 * The same tarball goes into a copy of examples/playwright-app (a user's app with its own
 * Playwright tests on `whittle/playwright`), which example.spec.ts runs; its webServer builds it.
 *
 * Used as the consumer tests' Playwright globalSetup, and runnable alone:
 *   tsx e2e/consumers/build-apps.ts   (prints where the apps are)
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = join(dirname(fileURLToPath(import.meta.url)), '../..');
const appsSrc = join(repo, 'e2e/consumers/apps');
const exampleSrc = join(repo, 'examples/playwright-app');
/** Outside the repository, so no package resolution can fall back to the repo's node_modules. */
export const CONSUMERS_DIR = process.env.WHITTLE_CONSUMERS_DIR ?? '/tmp/whittle-consumers';

export const APPS = {
  vite: { devDependencies: ['vite@8.3.8'], dist: 'dist' },
  webpack: { devDependencies: ['webpack@5.113.0', 'webpack-cli@6.0.1'], dist: 'dist' },
} as const;
export type AppName = keyof typeof APPS;

export interface BuiltApps {
  tarball: string;
  tarballBytes: number;
  apps: Record<AppName, string>;
  /** examples/playwright-app installed from the tarball (not built: its Playwright webServer builds it). */
  example: string;
}

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, npm_config_update_notifier: 'false' } });
}

/** The model files the apps serve from their own origin (what a user would put on their host). */
function copyModels(distDir: string): void {
  const models = join(repo, 'public/models');
  const out = join(distDir, 'models');
  mkdirSync(out, { recursive: true });
  for (const id of ['stories260K', 'lyra-v2']) cpSync(join(models, id), join(out, id), { recursive: true });
  copyFileSync(join(models, 'lyra-testdata/sample1_16kHz.wav'), join(out, 'sample1_16kHz.wav'));
  const manifests = JSON.parse(readFileSync(join(models, 'manifests.json'), 'utf8')) as { models: { id: string }[] };
  writeFileSync(join(out, 'manifests.json'), JSON.stringify({ models: manifests.models.filter((m) => m.id === 'lyra-v2') }));
}

export function buildApps(): BuiltApps {
  rmSync(CONSUMERS_DIR, { recursive: true, force: true });
  mkdirSync(CONSUMERS_DIR, { recursive: true });
  // The build runs first and on its own so that `npm pack --json` prints nothing but its JSON.
  run('npm', ['run', '--silent', 'build:lib'], repo);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', CONSUMERS_DIR], repo)) as { filename: string }[];
  const tarball = join(CONSUMERS_DIR, packed[0]!.filename);

  const apps = {} as Record<AppName, string>;
  for (const [name, spec] of Object.entries(APPS) as [AppName, (typeof APPS)[AppName]][]) {
    const dir = join(CONSUMERS_DIR, name);
    cpSync(join(appsSrc, name), dir, { recursive: true });
    cpSync(join(appsSrc, 'shared'), dir, { recursive: true });
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], dir);
    run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--save-dev', ...spec.devDependencies], dir);
    run('npm', ['run', 'build'], dir);
    const dist = join(dir, spec.dist);
    if (name === 'webpack') {
      // webpack emits a classic script: its automatic publicPath needs document.currentScript.
      writeFileSync(join(dist, 'index.html'), readFileSync(join(dir, 'index.html'), 'utf8').replace('type="module"', 'defer'));
    }
    copyModels(dist);
    apps[name] = dist;
  }
  return { tarball, tarballBytes: statSync(tarball).size, apps, example: installExample(tarball) };
}

/** examples/playwright-app with the tarball and its own devDependencies, and the model it serves and seeds. */
function installExample(tarball: string): string {
  const dir = join(CONSUMERS_DIR, 'example');
  const leftOut = /[\\/](node_modules|dist|test-results|playwright-report|public[\\/]models)([\\/]|$)/;
  cpSync(exampleSrc, dir, { recursive: true, filter: (src) => !leftOut.test(src.slice(exampleSrc.length)) });
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], dir);
  cpSync(join(repo, 'public/models/stories260K'), join(dir, 'public/models/stories260K'), { recursive: true });
  return dir;
}

export function builtApps(): BuiltApps {
  const path = join(CONSUMERS_DIR, 'built.json');
  if (!existsSync(path)) throw new Error(`consumer apps are not built; run tsx e2e/consumers/build-apps.ts`);
  return JSON.parse(readFileSync(path, 'utf8')) as BuiltApps;
}

/** Playwright globalSetup. */
export default function globalSetup(): void {
  const built = buildApps();
  writeFileSync(join(CONSUMERS_DIR, 'built.json'), JSON.stringify(built, null, 2));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  globalSetup();
  console.log(readFileSync(join(CONSUMERS_DIR, 'built.json'), 'utf8'));
}
