/** The main demo, driven like a person would: see the device, download a model, predict. */
import { test, expect } from './fixtures.ts';

test('playground: probe, predict with stories260K in a worker, then it is cached', async ({ page, backendName }) => {
  await page.goto('/');
  await expect(page).toHaveURL(/\/demos\/playground\/$/);
  await expect(page.locator('#choice')).toContainText('Using'); // initial probe done
  await page.selectOption('#backend', backendName);
  await expect(page.locator('#choice')).toContainText(`Using ${backendName}`);
  await expect(page.locator('#caps')).toContainText('cross-origin isolated');
  await page.fill('#prompt', 'Once upon a time, there was a little');
  await page.click('#run');
  await expect(page.locator('#predictions li')).toHaveCount(10);
  await expect(page.locator('#run-info')).toContainText(`on ${backendName}`);
  const first = await page.locator('#predictions li').first().textContent();
  expect(first).toMatch(/^".*" \d+\.\d%/);
  await expect(page.locator('#model-rows')).toContainText('cached ✓');
  await page.screenshot({ path: `test-results/playground-${backendName}.png`, fullPage: true });
});
