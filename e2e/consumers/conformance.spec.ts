/**
 * The conformance page as a user gets it: the installed tarball's `whittle conformance` serves
 * the page (built into the package) and this repository's models; Playwright drives it through
 * `openConformance` on WASM (WebGPU on SwiftShader takes minutes; the page itself was run on it
 * by hand, see the CHANGELOG). Every check must pass, the page must be cross-origin isolated, and
 * the report must validate against the JSON Schema the package ships.
 */
import { test, expect } from '@playwright/test';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openConformance, validateJsonSchema } from 'whittle/playwright';
import { CONSUMERS_DIR } from './build-apps.ts';

const app = () => join(CONSUMERS_DIR, 'vite');
const bin = () => join(app(), 'node_modules/.bin/whittle');

test('the installed `whittle conformance`: every check passes on WASM, and the report validates against the shipped schema', async ({
  page,
}) => {
  const server = spawn(bin(), ['conformance', '--port', '0', '--models', join(process.cwd(), 'public/models')], {
    cwd: app(),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const url = await new Promise<string>((ok, fail) => {
      let out = '';
      server.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /conformance page: (http:\/\/\S+)/.exec(out);
        if (m) ok(m[1]!);
      });
      server.once('exit', (code) => fail(new Error(`whittle conformance exited (${code}): ${out}`)));
    });
    const report = await openConformance(page, { url, backends: ['wasm'], timeoutMs: 150_000 });

    const schema = JSON.parse(readFileSync(join(app(), 'node_modules/whittle/dist/conformance.report.schema.json'), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(validateJsonSchema(report, schema)).toEqual([]);
    expect(report.checks.map((c) => `${c.id}${c.backend ? `@${c.backend}` : ''}: ${c.status}${c.reason ? ` (${c.reason})` : ''}`)).toEqual([
      'probe: pass',
      'golden-tokens@wasm: pass',
      'pruned-plan@wasm: pass',
      'early-exit@wasm: pass',
      'self-speculation@wasm: pass',
      'codec-round-trip@wasm: pass',
      'storage: pass',
    ]);
    expect(report.summary).toEqual({ pass: 7, fail: 0, skip: 0 });
    expect(report.checks[0]!.details).toMatchObject({ crossOriginIsolated: true });
    const rates = (report.checks.find((c) => c.id === 'codec-round-trip')!.details as { rates: { kbps: number }[] }).rates;
    expect(rates.map((r) => r.kbps)).toEqual([3.2, 6, 9.2]);
    // The readable table has a row per check.
    await expect(page.locator('#rows tr')).toHaveCount(report.checks.length);
    await expect(page.locator('#status')).toHaveText('done: 7 pass, 0 fail, 0 skip');
  } finally {
    server.kill('SIGINT');
  }
});

test('`whittle conformance` refuses a models folder without manifests.json, with a clear error', () => {
  const r = spawnSync(bin(), ['conformance', '--port', '0', '--models', app()], { cwd: app(), encoding: 'utf8' });
  expect(r.status).toBe(2);
  expect(r.stderr).toMatch(/INVALID_ARGUMENT: --models .* has no manifests\.json/);
});
