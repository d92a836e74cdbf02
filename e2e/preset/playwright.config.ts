/**
 * A nested Playwright run for e2e/playwright-preset-absent.spec.ts: one test, in two projects
 * that target a hardware WebGPU adapter on a Chromium forced onto SwiftShader, so the backend is
 * absent on every machine. `optional` must skip with the reason; `required` must fail with it;
 * `threads-unisolated` (wasm-threads on a server without COOP/COEP) must skip with that reason.
 * The outer spec starts this run against its own dev server and reads the JSON report.
 */
import { defineConfig } from '@playwright/test';
import { whittleProject } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';

function withBaseURL<P extends { use?: object }>(project: P, baseURL: string | undefined): P {
  return { ...project, use: { ...project.use, baseURL } };
}

const chromium = { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, '--use-webgpu-adapter=swiftshader'] };

export default defineConfig({
  testDir: '.',
  testMatch: '*.nested.ts',
  workers: 1,
  timeout: 60_000,
  // Playwright empties its output folder at the start of a run, by default the package's
  // test-results/, which holds the outer run's output.
  outputDir: 'test-results',
  use: { baseURL: process.env.WHITTLE_PRESET_BASE_URL, headless: true },
  projects: [
    whittleProject('webgpu', { ...chromium, name: 'optional' }),
    whittleProject('webgpu', { ...chromium, name: 'required', require: true }),
    // wasm-threads against a server that sends no COOP/COEP (the outer spec starts it).
    withBaseURL(whittleProject('wasm-threads', { ...chromium, name: 'threads-unisolated' }), process.env.WHITTLE_PRESET_PLAIN_URL),
  ],
});
