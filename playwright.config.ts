/**
 * Browser tests: Debian's Chromium driven by playwright-core, against the Vite dev server
 * with the e2e fixture plugin. Two projects, made with the package's own preset
 * (`whittle/playwright`, dogfooded: the specs use its `whittleTest`): `wasm`, which targets
 * `wasm-threads` since this server sends COOP/COEP (the preset checks that every test's page
 * really was crossOriginIsolated), and `webgpu` on SwiftShader's real WebGPU adapter (a CPU
 * emulation, so WebGPU tests stay small). Both require their backend: on a machine without it
 * every test fails with the reason instead of skipping.
 */
import { defineConfig } from '@playwright/test';
import { whittleProject } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './e2e/chromium.ts';

const PORT = Number(process.env.WHITTLE_E2E_PORT ?? 5174);
// This machine's Chromium and flags; the project names stay those the specs and CI know.
const chromium = { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, require: true };

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
    whittleProject('wasm-threads', { ...chromium, name: 'wasm' }),
    { ...whittleProject('webgpu-swiftshader', { ...chromium, name: 'webgpu' }), testIgnore: ['store.spec.ts', 'worker.spec.ts', 'consumers/**'] },
  ],
  webServer: {
    command: `WHITTLE_E2E=1 npx vite --port ${PORT} --strictPort --host 127.0.0.1`,
    url: `http://127.0.0.1:${PORT}/e2e/pages/harness.html`,
    reuseExistingServer: !process.env.CI,
    timeout: 120_000,
  },
});
