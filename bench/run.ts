/**
 * Benchmark runner: serves the repo with Vite, opens bench/pages/<name>.html in headless
 * Debian Chromium (playwright-core), relays the page's progress to stderr and prints the
 * page's result as ONE JSON object on the last line of stdout.
 *
 *   tsx bench/run.ts <name> [--json] [--quick] [--port N] [--models a,b]   (prune: the depth-only Chromium page; npm run bench:prune is bench/prune.ts)
 *   tsx bench/run.ts scale [--json] [--quick] [--shapes smollm2-135m,smollm2-360m] [--rounds 3] [--threads 1,2] [--weights f32,q8,q4] [--peers transformersjs,wllama|none] [--backend webgpu] [--page-timeout S]   (bench/scale.ts)
 *
 * Pages set `window.benchDone = { result }` or `{ error }`. Ratios against the peer measured
 * in the same run are what to compare across machines, not absolute times.
 */
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { createServer } from 'vite';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium.ts';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { json: { type: 'boolean', default: false }, quick: { type: 'boolean', default: false }, port: { type: 'string', default: '5181' }, timeout: { type: 'string', default: '1500' }, models: { type: 'string' }, shapes: { type: 'string' }, rounds: { type: 'string' }, threads: { type: 'string' }, weights: { type: 'string' }, peers: { type: 'string' }, backend: { type: 'string' }, 'page-timeout': { type: 'string' } },
});
const name = positionals[0];
if (!name || !/^[\w-]+$/.test(name)) {
  console.error('usage: tsx bench/run.ts <name> [--json] [--quick]');
  process.exit(2);
}

process.env.WHITTLE_BENCH = '1';
// scale loads folders by URL; Vite's SPA fallback answers the missing whittle.json with index.html, which the SDK reads as absent (url-folder.ts).
const server = await createServer({ configFile: 'vite.config.ts', server: { port: Number(values.port), strictPort: true, host: '127.0.0.1' }, logLevel: 'warn' });
await server.listen();
const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [...CHROMIUM_ARGS],
});
let exitCode = 0;
try {
  if (name === 'scale') {
    // One page per contender and round, each in its own browser context, plus /proc memory reads: bench/scale.ts drives them.
    const { runScale } = await import('./scale.ts');
    const result = await runScale(browser, { origin: `http://127.0.0.1:${values.port}`, shapes: values.shapes, rounds: values.rounds ? Number(values.rounds) : undefined, threads: values.threads, weights: values.weights, peers: values.peers, backend: values.backend === 'webgpu' ? 'webgpu' : undefined, pageTimeoutS: values['page-timeout'] ? Number(values['page-timeout']) : undefined, quick: values.quick, log: (line) => console.error(`[scale] ${line}`) });
    console.log(values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
  } else {
    const page = await browser.newPage();
    page.on('console', (msg) => {
      const text = msg.text();
      if (!/not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/.test(text)) console.error(`[${name}] ${text}`);
    });
    page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.message}`));
    const params = new URLSearchParams();
    if (values.quick) params.set('quick', '1');
    if (values.models) params.set('models', values.models);
    const query = params.size > 0 ? `?${params}` : '';
    await page.goto(`http://127.0.0.1:${values.port}/bench/pages/${name}.html${query}`);
    await page.waitForFunction(() => (window as unknown as { benchDone?: unknown }).benchDone !== undefined, undefined, { timeout: Number(values.timeout) * 1000, polling: 500 });
    const done = (await page.evaluate(() => (window as unknown as { benchDone: { result?: unknown; error?: string } }).benchDone)) as { result?: unknown; error?: string };
    if (done.error) {
      console.error(`[${name}] failed: ${done.error}`);
      exitCode = 1;
    } else {
      console.log(values.json ? JSON.stringify(done.result) : JSON.stringify(done.result, null, 2));
    }
  }
} finally {
  await browser.close();
  await server.close();
}
process.exit(exitCode);
