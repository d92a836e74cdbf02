/**
 * examples/playwright-app from the packed tarball (installed by build-apps.ts): its own
 * Playwright suite, on `whittle/playwright`, run as its user would run it in CI, with the
 * `wasm`, `wasm-threads` and `webgpu-swiftshader` projects, plus `webgpu`, which this machine
 * (SwiftShader only) lacks: the JSON report must show that one skipped with the reason, never a
 * pass. Both of its specs run: the default context's and the persistent-context recipe's, whose
 * profiles must be where a user finds them by default. Its TypeScript (config and specs) must
 * compile against the package's declarations.
 */
import { test, expect } from '@playwright/test';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';
import { builtApps } from './build-apps.ts';

interface JsonSpec {
  title: string;
  file: string;
  tests: {
    projectName: string;
    status: string;
    annotations: { type: string; description?: string }[];
    results: { status: string; error?: { message?: string }; attachments: { name: string }[] }[];
  }[];
}
interface JsonSuite {
  specs: JsonSpec[];
  suites?: JsonSuite[];
}

/** The environment of a user's shell: none of this (outer) Playwright run's own variables. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(PW_|PLAYWRIGHT_|TEST_|NODE_OPTIONS$|FORCE_COLOR$)/.test(k)),
  );
  return { ...env, ...extra };
}

function allSpecs(suite: JsonSuite): JsonSpec[] {
  return [...suite.specs, ...(suite.suites ?? []).flatMap(allSpecs)];
}

test("the example app's Playwright suite: golden on wasm, wasm-threads and webgpu-swiftshader, in the default and a persistent context; webgpu skipped with its reason", () => {
  test.setTimeout(400_000);
  const dir = builtApps().example;
  const reportPath = join(dir, 'report.json');
  const projects = ['wasm', 'wasm-threads', 'webgpu-swiftshader', 'webgpu'].flatMap((p) => ['--project', p]);
  const run = spawnSync('npx', ['--no-install', 'playwright', 'test', ...projects, '--reporter', 'json'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 360_000,
    env: userEnv({
      CI: '1',
      PORT: process.env.WHITTLE_EXAMPLE_PORT ?? '5188',
      WHITTLE_CHROMIUM_PATH: CHROMIUM_PATH,
      WHITTLE_CHROMIUM_ARGS: CHROMIUM_ARGS.join(' '),
      PLAYWRIGHT_JSON_OUTPUT_NAME: reportPath,
    }),
  });
  if (run.status !== 0) console.log(run.stdout.slice(-4000), run.stderr.slice(-4000));
  expect(run.status).toBe(0);
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { suites: JsonSuite[] };
  // Per spec file (story: the default context; persistent: whittlePersistentTest), per project.
  const byRun = new Map(report.suites.flatMap(allSpecs).flatMap((s) => s.tests.map((t) => [`${s.file} ${t.projectName}`, t] as const)));
  const files = ['story.spec.ts', 'persistent.spec.ts'];
  expect([...byRun.keys()].sort()).toEqual(
    files.flatMap((f) => ['wasm', 'wasm-threads', 'webgpu', 'webgpu-swiftshader'].map((p) => `${f} ${p}`)).sort(),
  );
  for (const name of ['wasm', 'wasm-threads', 'webgpu-swiftshader']) {
    for (const file of files) {
      const t = byRun.get(`${file} ${name}`)!;
      expect(t.status, `${file} ${name}`).toBe('expected');
      expect(t.results[0]!.status, `${file} ${name}`).toBe('passed');
      const attached = t.results[0]!.attachments.map((a) => a.name);
      expect(attached, `${file} ${name}`).toEqual(
        expect.arrayContaining(['whittle-backend', 'whittle-seed', ...(file === 'story.spec.ts' ? ['whittle-stats'] : [])]),
      );
    }
  }
  for (const file of files) {
    const gpu = byRun.get(`${file} webgpu`)!;
    expect(gpu.results[0]!.status).toBe('skipped');
    const skip = gpu.annotations.find((a) => a.type === 'skip');
    expect(skip?.description).toMatch(/^webgpu backend absent: no hardware WebGPU adapter: /);
  }
  // The persistent profiles, where a user's project keeps them by default: one per project (each
  // named by its settings' digest), one per worker inside.
  const profiles = readdirSync(join(dir, 'node_modules/.cache/whittle-playwright')).sort();
  expect(profiles.map((p) => p.replace(/-[0-9a-f]{10}$/, ''))).toEqual(['wasm', 'wasm-threads', 'webgpu', 'webgpu-swiftshader']);
  for (const p of profiles) expect(readdirSync(join(dir, 'node_modules/.cache/whittle-playwright', p))).toEqual(['worker-0']);
});

test("the example's config and spec compile against the installed package's declarations (strict, lib check on)", () => {
  const dir = builtApps().example;
  const result = spawnSync(join(process.cwd(), 'node_modules/.bin/tsc'), ['-p', 'tsconfig.json'], { cwd: dir, encoding: 'utf8' });
  expect(result.stdout + result.stderr).toBe('');
  expect(result.status).toBe(0);
});
