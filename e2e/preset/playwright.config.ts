/**
 * A nested Playwright run for e2e/playwright-preset-absent.spec.ts: one test, in two projects
 * that target a hardware WebGPU adapter on a Chromium forced onto SwiftShader, so the backend is
 * absent on every machine. `optional` must skip with the reason; `required` must fail with it.
 * The outer spec starts this run against its own dev server and reads the JSON report.
 */
import { defineConfig } from '@playwright/test';
import { whittleProject } from 'whittle/playwright';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.ts';

const chromium = { executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS, '--use-webgpu-adapter=swiftshader'] };

export default defineConfig({
  testDir: '.',
  testMatch: '*.nested.ts',
  workers: 1,
  timeout: 60_000,
  use: { baseURL: process.env.WHITTLE_PRESET_BASE_URL, headless: true },
  projects: [whittleProject('webgpu', { ...chromium, name: 'optional' }), whittleProject('webgpu', { ...chromium, name: 'required', require: true })],
});
