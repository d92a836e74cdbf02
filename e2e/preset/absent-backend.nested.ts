/** Run by e2e/preset/playwright.config.ts only: a test whose backend the browser lacks. */
import { whittleTest as test, expect } from 'whittle/playwright';

test('needs a hardware WebGPU adapter', ({ whittleBackend }) => {
  // Never reached where the backend is absent: the fixture skips (optional) or fails (required) first.
  expect(whittleBackend.available).toBe(true);
});
