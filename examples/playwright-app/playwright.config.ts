import { defineConfig } from '@playwright/test';
import { projects, whittleProject } from 'whittle/playwright';

const PORT = Number(process.env.PORT ?? 4173);

export default defineConfig({
  testDir: 'tests',
  timeout: 120_000,
  workers: 1,
  // On the GPU runner a missing GPU must fail the job, not skip it (see .github/workflows/e2e.yml).
  projects: process.env.WHITTLE_REQUIRE_GPU ? [whittleProject('webgpu', { require: true })] : projects,
  // Tests written with whittlePersistentTest (tests/persistent.spec.ts) run in a persistent Chromium
  // context per worker, its profile in node_modules/.cache/whittle-playwright (use.whittleUserDataDir moves it).
  use: { baseURL: `http://127.0.0.1:${PORT}` },
  webServer: {
    command: `npx vite build && npx vite preview --host 127.0.0.1 --port ${PORT} --strictPort`,
    url: `http://127.0.0.1:${PORT}`,
    reuseExistingServer: !process.env.CI,
    timeout: 120_000,
  },
});
