import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['core/**/*.test.ts', 'sdk/**/*.test.ts', 'workers/**/*.test.ts', 'models/**/*.test.ts', 'scripts/**/*.test.ts'],
    exclude: ['**/node_modules/**', 'models/recipes/**'],
    testTimeout: 60_000,
    pool: 'forks',
  },
});
