/**
 * Consumer apps from the packed tarball (built by build-apps.ts, the globalSetup): a Vite app
 * and a webpack 5 app, each served as a production build with and without cross-origin
 * isolation. Each must stream run.c's 20 golden tokens of stories260K loaded by URL, round-trip
 * speech through the codec, and make no request outside its own origin.
 */
import { test, expect } from '@playwright/test';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APPS, builtApps, CONSUMERS_DIR, type AppName } from './build-apps.ts';
import { serveStatic } from './static-server.ts';

/** run.c's greedy tokens for stories260K from BOS (the same golden the repo's own e2e uses). */
const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

interface AppResult {
  error?: string;
  tokens: number[];
  text: string;
  crossOriginIsolated: boolean;
  runtime: { backend: string; numThreads: number };
  codec: { packetBytes: number; samples: number; finite: boolean };
}

for (const app of Object.keys(APPS) as AppName[]) {
  for (const isolated of [true, false]) {
    test(`${app} app, production build, ${isolated ? 'cross-origin isolated' : 'not isolated'}`, async ({ page }) => {
      const host = await serveStatic(builtApps().apps[app], { isolated });
      const offOrigin: string[] = [];
      page.on('request', (req) => {
        const url = new URL(req.url());
        if (url.protocol !== 'blob:' && url.protocol !== 'data:' && url.origin !== host.origin) offOrigin.push(req.url());
      });
      page.on('pageerror', (err) => console.log(`[${app}] page error: ${err.message}`));
      try {
        await page.goto(`${host.origin}/?backend=wasm`);
        // Interval polling: the default (requestAnimationFrame) can stall in a headless page that is not painting.
        await page.waitForFunction(() => 'whittleResult' in window, null, { timeout: 90_000, polling: 250 });
        const r = (await page.evaluate(() => (window as unknown as { whittleResult: unknown }).whittleResult)) as AppResult;
        expect(r.error).toBeUndefined();
        expect(r.tokens).toEqual(GOLDEN);
        expect(r.text).toContain('Once upon a time, there was a little girl named Lily');
        expect(r.crossOriginIsolated).toBe(isolated);
        expect(r.runtime.backend).toBe('wasm');
        if (isolated) expect(r.runtime.numThreads).toBeGreaterThan(1);
        else expect(r.runtime.numThreads).toBe(1);
        // 6 kbps = 15 bytes + 3 header bytes per 20 ms frame; sample1 is 3.2 s at 16 kHz.
        expect(r.codec.finite).toBe(true);
        expect(r.codec.samples).toBeGreaterThan(16_000 * 3);
        expect(r.codec.packetBytes).toBeGreaterThan(150 * 18);
        expect(offOrigin).toEqual([]);
        // The workers and onnxruntime's files came from the app's own build output.
        expect(host.requests.some((p) => /\.wasm$/.test(p))).toBe(true);
        // onnxruntime stays in the workers: the page's entry script has none of it.
        const dist = builtApps().apps[app];
        const entry = /<script[^>]*src="\.?\/?([^"]+)"/.exec(readFileSync(join(dist, 'index.html'), 'utf8'))![1]!;
        expect(readFileSync(join(dist, entry), 'utf8')).not.toMatch(/InferenceSession|ort-wasm-simd/);
      } finally {
        await host.close();
      }
    });
  }
}

test('the installed CLI generates from a local model folder', () => {
  const folder = join(process.cwd(), 'public/models/stories260K');
  const out = execFileSync('npx', ['--no-install', 'whittle', 'generate', '--model', folder, '--max-tokens', '20', '--greedy', '--json'], {
    cwd: join(CONSUMERS_DIR, 'vite'),
    encoding: 'utf8',
  });
  const result = JSON.parse(out.trim().split('\n').at(-1)!) as { tokens: number[] };
  expect(result.tokens).toEqual(GOLDEN);
});

for (const resolution of ['bundler', 'nodenext'] as const) {
  test(`the installed package's declarations compile a consumer of every export (--strict, ${resolution} resolution, lib check on)`, () => {
    const app = join(CONSUMERS_DIR, 'vite');
    copyFileSync(join(process.cwd(), 'e2e/consumers/uses-every-export.ts'), join(app, 'uses-every-export.ts'));
    const tsc = join(process.cwd(), 'node_modules/.bin/tsc');
    const compilerOptions = {
      strict: true,
      noUnusedLocals: true,
      noEmit: true,
      skipLibCheck: false, // the package's own .d.ts files are checked too
      target: 'es2022',
      lib: ['es2023', 'dom', 'dom.iterable'],
      types: [],
      module: resolution === 'bundler' ? 'esnext' : 'nodenext',
      moduleResolution: resolution,
    };
    writeFileSync(join(app, `tsconfig.${resolution}.json`), JSON.stringify({ compilerOptions, files: ['uses-every-export.ts'] }));
    const args = ['-p', `tsconfig.${resolution}.json`];
    const result = spawnSync(tsc, args, { cwd: app, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
}
