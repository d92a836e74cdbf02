/**
 * The consumer tests: the packed tarball installed into fresh Vite and webpack 5 apps (built in
 * globalSetup), served as production builds, driven in Debian's Chromium.
 */
import { defineConfig } from '@playwright/test';
import baseConfig from '../../playwright.config.ts';

export default defineConfig({
  testDir: '.',
  testMatch: '*.spec.ts',
  globalSetup: './build-apps.ts',
  timeout: 180_000,
  workers: 1,
  reporter: [['list']],
  use: { launchOptions: baseConfig.use?.launchOptions, headless: true },
});
