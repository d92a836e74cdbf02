import { defineConfig } from 'vitest/config';
import { TRANSFER_FLAG } from './scripts/node-transfer-flag.ts';

export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'sdk/**/*.test.ts', 'workers/**/*.test.ts', 'models/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'models/recipes/**'],
    testTimeout: 60_000,
    pool: 'forks',
    // Every test runs the early releases of load-time arrays that a browser does (scripts/node-transfer-flag.ts).
    execArgv: TRANSFER_FLAG,
  },
});
