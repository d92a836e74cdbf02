import { defineConfig } from 'vitest/config';

// Node 20 has ArrayBuffer.prototype.transfer behind a V8 flag (Chromium and Node 21+ ship it):
// with it, the tests run the same early releases of load-time arrays that the browser does
// (core/release.ts), so a use after release fails here rather than in a user's tab.
const transferFlag = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function' && process.versions.node.startsWith('20.') ? ['--harmony-rab-gsab-transfer'] : [];

export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'sdk/**/*.test.ts', 'workers/**/*.test.ts', 'models/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'models/recipes/**'],
    testTimeout: 60_000,
    pool: 'forks',
    execArgv: transferFlag,
  },
});
