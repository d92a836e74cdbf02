// The fuzz test lives outside the folders the root vitest.config.ts includes; this config runs
// it on its own: npx vitest run -c scripts/fuzz/vitest.config.ts
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: { include: ['scripts/fuzz/**/*.test.ts'], root: new URL('../..', import.meta.url).pathname, testTimeout: 240_000, pool: 'forks' },
});
