/** The live codec demo driven like a person: stream a clip, switch bitrate mid-stream, add loss. */
import { test, expect } from './fixtures.ts';

interface Analysis {
  samples: number;
  frames: number;
  nans: number;
  switchBoundaries: number;
  maxStepAtSwitch: number;
  p999Step: number;
  maxStep: number;
  stats: { framesCaptured: number; concealed: number; packetsDropped: number; switches: { kbps: number; reason: string }[]; measuredLatencyMs: number | null };
}

test('live codec: bitrate switch and loss mid-stream; the decoded stream is whole, finite and click-free', async ({ page, backendName }) => {
  test.skip(backendName !== 'wasm', 'real-time streaming needs a codec faster than SwiftShader emulates');
  test.setTimeout(180_000);
  await page.goto('/demos/codec/?backend=wasm');
  await page.selectOption('#source', 'sample2_16kHz.wav');
  await page.locator('#kbps').fill('6');
  await page.click('#start');
  await expect(page.locator('#state')).toHaveText('streaming', { timeout: 60_000 });
  // Switch to 3.2 kbps after ~1 s, then turn on 10% loss.
  await expect.poll(() => page.evaluate(() => (window as unknown as { liveDemo?: { live: { stats: { packetsSent: number } } } }).liveDemo?.live.stats.packetsSent ?? 0)).toBeGreaterThan(40);
  await page.locator('#kbps').fill('3.2');
  await expect.poll(() => page.evaluate(() => (window as unknown as { liveDemo: { live: { stats: { packetsSent: number } } } }).liveDemo.live.stats.packetsSent)).toBeGreaterThan(80);
  await page.locator('#loss').fill('0.1');
  await expect(page.locator('#state')).toContainText('done', { timeout: 120_000 });
  await expect(page.locator('#switches')).toContainText('3.2 kbps (manual)');

  const a = (await page.evaluate(() => (window as unknown as { liveDemo: { analysis: () => unknown } }).liveDemo.analysis())) as Analysis;
  const clipFrames = Math.ceil(92160 / 2 / 320); // sample2_16kHz.wav: 46,080 samples of 16-bit audio
  expect(a.stats.framesCaptured).toBe(clipFrames);
  expect(a.frames).toBe(clipFrames); // every frame played: decoded or concealed
  expect(a.samples).toBe(clipFrames * 320);
  expect(a.nans).toBe(0);
  expect(a.switchBoundaries).toBeGreaterThanOrEqual(1);
  expect(a.stats.packetsDropped).toBeGreaterThan(0);
  expect(a.stats.concealed).toBeGreaterThan(0);
  // No click at the switch: the largest step there is within the stream's own 99.9th-percentile step x2.
  expect(a.maxStepAtSwitch).toBeLessThanOrEqual(Math.max(2 * a.p999Step, 0.05));
  expect(a.stats.measuredLatencyMs).not.toBeNull();
  await page.screenshot({ path: 'test-results/live-codec.png', fullPage: true });
});
