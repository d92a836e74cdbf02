/**
 * `whittle/playwright` never passes silently where the backend is missing: a nested run
 * (e2e/preset/) of one test targeting a hardware WebGPU adapter on a SwiftShader-only Chromium
 * reports it skipped with the reason in the `optional` project, and failed with the same
 * reason in the `required` project; `wasm-threads` against a server without COOP/COEP skips
 * saying so. (A skipped test cannot check itself, hence the nested run and its JSON report.)
 */
import { test, expect } from '@playwright/test';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

interface JsonTest {
  projectName: string;
  status: string;
  annotations: { type: string; description?: string }[];
  results: { status: string; error?: { message?: string } }[];
}

test('an absent backend skips with its reason, and fails when the project requires it', async ({ baseURL }, testInfo) => {
  test.skip(testInfo.project.name !== 'wasm', 'one nested run is enough; it starts its own Chromium');
  // A host like any other, minus the cross-origin isolation headers.
  const plain = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><p>app'));
  await new Promise<void>((ok) => plain.listen(0, '127.0.0.1', ok));
  const plainUrl = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
  const reportPath = join(mkdtempSync(join(tmpdir(), 'whittle-preset-')), 'report.json');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(PW_|PLAYWRIGHT_|TEST_|NODE_OPTIONS$)/.test(k)));
  // Asynchronous: the plain server answers the nested run's requests from this process.
  const run = await new Promise<{ status: number | null; stderr: string }>((ok) => {
    const child = spawn('npx', ['--no-install', 'playwright', 'test', '-c', 'e2e/preset/playwright.config.ts', '--reporter', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...env, WHITTLE_PRESET_BASE_URL: baseURL!, WHITTLE_PRESET_PLAIN_URL: plainUrl, PLAYWRIGHT_JSON_OUTPUT_NAME: reportPath },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (status) => ok({ status, stderr }));
  }).finally(() => {
    plain.closeAllConnections(); // Chromium keeps connections alive; close() alone would wait for them
    return new Promise((ok) => plain.close(() => ok(undefined)));
  });
  expect(run.status, run.stderr).toBe(1); // the required project's failure
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as { suites: { specs: { tests: JsonTest[] }[] }[] };
  const tests = report.suites.flatMap((s) => s.specs).flatMap((s) => s.tests);
  const optional = tests.find((t) => t.projectName === 'optional')!;
  const required = tests.find((t) => t.projectName === 'required')!;

  expect(optional.results[0]!.status).toBe('skipped');
  const skip = optional.annotations.find((a) => a.type === 'skip');
  expect(skip?.description).toMatch(/^webgpu backend absent: no hardware WebGPU adapter: the WebGPU adapter is SwiftShader/);

  expect(required.results[0]!.status).toBe('failed');
  expect(required.results[0]!.error?.message).toMatch(
    /the webgpu backend is required \(whittleRequireBackend\) but absent: no hardware WebGPU adapter: the WebGPU adapter is SwiftShader/,
  );
  const threads = tests.find((t) => t.projectName === 'threads-unisolated')!;
  expect(threads.results[0]!.status).toBe('skipped');
  expect(threads.annotations.find((a) => a.type === 'skip')?.description).toMatch(
    /^wasm-threads backend absent: WASM threads need cross-origin isolation, and the app's server does not send Cross-Origin-Opener-Policy: same-origin/,
  );
  // Both reports carry what the probe found.
  for (const t of [optional, required])
    expect(t.annotations.find((a) => a.type === 'whittle-backend')?.description).toMatch(/^webgpu: absent; google swiftshader/);
});
