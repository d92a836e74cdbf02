/**
 * Browser tests: Debian's Chromium driven by playwright-core, against the Vite dev server
 * with the e2e fixture plugin. Two projects, made with the package's own preset
 * (`whittle/playwright`'s `whittleProject`, dogfooded): `wasm`, and `webgpu` on SwiftShader's
 * real WebGPU adapter (a CPU emulation, so WebGPU tests stay small).
 */
import { defineConfig } from '@playwright/test';
import { whittleProject } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './e2e/chromium.ts';

const PORT = Number(process.env.WHITTLE_E2E_PORT ?? 5174);
// This machine's Chromium and flags; the project names stay those the specs and CI know.
const chromium = { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS };
const wasm = whittleProject('wasm', { ...chromium, name: 'wasm' });
const webgpu = whittleProject('webgpu-swiftshader', { ...chromium, name: 'webgpu' });


export default defineConfig({
  testDir: 'e2e',
  testMatch: '*.spec.ts',
  // The consumer apps have their own config (e2e/consumers/playwright.config.ts): they test the packed tarball.
  testIgnore: ['consumers/**'],
  timeout: 120_000,
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: process.env.CI ? [['list']] : [['list']],
  use: {
    baseURL: `http://127.0.0.1:${PORT}`,
    launchOptions: { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] },
    headless: true,
  },
  projects: [
    { ...wasm, use: { ...wasm.use, backendName: 'wasm' } as never },
    { ...webgpu, use: { ...webgpu.use, backendName: 'webgpu' } as never, testIgnore: ['store.spec.ts', 'worker.spec.ts', 'consumers/**'] },
  ],
  webServer: {
    command: `WHITTLE_E2E=1 npx vite --port ${PORT} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${PORT}/e2e/pages/harness.html`,
    reuseExistingServer: !process.env.CI,
    timeout: 120_000,
  },
});
