/**
 * The soak run (scripts/soak/main.ts, scripts/soak/soak.test.ts): serves the repo with Vite,
 * opens scripts/soak/soak.html in headless Debian Chromium and drives it.
 *
 * 1. Text: `generations` generations on one model (plan switches, speculation, aborts, sampling;
 *    page.ts), the worker's WASM heap and the page's JS heap sampled at every plan switch.
 * 2. Codec: `minutes` of live streaming of a looping clip with bitrate switches and changing loss,
 *    the main thread's JS heap sampled every `sampleSeconds`; then `hogMinutes` more with a CPU-hog page open
 *    in another tab (another site, so another renderer process).
 *
 * Memory verdicts (growth.ts) leave out the warm-up: the text series starts after the first
 * round of plans (each plan compiled and each kind of generation run once), the codec series
 * after its first sample.
 */
import { realpathSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { chromium, type Page } from 'playwright-core';
import { createServer } from 'vite';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../../e2e/chromium.ts';
import { growthVerdict, type GrowthVerdict } from './growth.ts';
import type { CodecSoakOptions, CodecSoakResult, HeapSample, TextSoakOptions, TextSoakResult } from './page.ts';

export interface SoakOptions {
  backend: 'wasm' | 'webgpu';
  /** onnxruntime's WASM threads. 1 (default) lets the JS heap be measured with the workers' (page.ts jsHeap). */
  threads: number;
  model: string;
  generations: number;
  sampleEvery: number;
  maxTokens: number;
  minutes: number;
  hogMinutes: number;
  hogThreads: number;
  sampleSeconds: number;
  /** The simulated link's jitter, ms (uniform 0..this; default 10). */
  linkJitterMs?: number;
  /** The network jitter buffer: 'adaptive' (default) or 'fixed' at 3 frames (the peer). */
  jitterBuffer?: 'adaptive' | 'fixed';
  port: number;
  log: (line: string) => void;
}

export const LONG: Omit<SoakOptions, 'log' | 'port'> = { backend: 'wasm', threads: 1, model: 'stories260K', generations: 1000, sampleEvery: 20, maxTokens: 16, minutes: 10, hogMinutes: 2, hogThreads: 1, sampleSeconds: 30 };
/** The CI run: about two minutes on a quiet 2-core machine. */
export const SHORT: Omit<SoakOptions, 'log' | 'port'> = { backend: 'wasm', threads: 1, model: 'stories260K', generations: 400, sampleEvery: 20, maxTokens: 12, minutes: 0.5, hogMinutes: 0.25, hogThreads: 1, sampleSeconds: 5 };

interface Series {
  start: number;
  end: number;
  verdict: GrowthVerdict;
}

export interface SoakResult {
  options: Omit<SoakOptions, 'log' | 'port'>;
  machine: { cpus: number; loadavg: number[] };
  text: Omit<TextSoakResult, 'samples'> & {
    wrongAnswers: TextSoakResult['wrongAnswers'];
    memory: { wasmHeap: Series; jsHeap: Series & { source: HeapSample['source'] } };
    /** [generation, WASM heap bytes, JS heap bytes] at each plan switch. */
    samples: [number, number | null, number][];
  };
  codec: {
    quiet: CodecSoakResult;
    hog: CodecSoakResult & { hogThreads: number };
    memory: { jsHeap: Series & { source: HeapSample['source'] } };
    /** [seconds since the stream started, main-thread JS heap bytes (performance.memory)] during the quiet stream. */
    samples: [number, number][];
  };
  /** The page's WebGPU buffers are not sampled here (WASM by default); e2e/text.spec.ts checks GPU buffers over aborts. */
  gpuBuffers: null;
  summary: { untypedErrors: number; otherErrors: number; wrongAnswers: number; flat: boolean };
}

function series(xs: number[], ys: number[]): Series {
  return { start: ys[0] ?? NaN, end: ys[ys.length - 1] ?? NaN, verdict: growthVerdict(xs, ys) };
}

/** One line on how a live stream kept time: continuity (underruns, concealed and dropped slots) and latency. */
function codecLine(r: CodecSoakResult): string {
  const p = r.playout;
  const ms = (x: number | null) => (x === null ? '-' : x.toFixed(0));
  return `${r.frames} frames, ${r.underruns} underruns (${p?.concealed ?? 0} slots concealed, ${p?.dropped ?? 0} dropped to win latency back, ${r.skipped} skipped behind real time), latency p50 ${ms(r.latencyMs.p50)} p99 ${ms(r.latencyMs.p99)} last ${ms(r.latencyMs.last)} ms (configured ${ms(r.latencyMs.configured)}), ${r.late} late packets, jitter buffer ${r.jitter.targetFrames} frames (${r.jitter.delayMs} ms after sending)`;
}

const errorCount = (e: { typed: Record<string, number>; untyped: string[] }) => Object.values(e.typed).reduce((a, b) => a + b, 0);

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { log, port, ...settings } = options;
  const root = join(import.meta.dirname, '../..');
  // node_modules may be a symlink (a shared install, a workspace): let Vite serve where it points.
  const server = await createServer({
    configFile: join(root, 'vite.config.ts'),
    // No HMR, no watching: an edited file must not reload the page in the middle of a run.
    server: { port, strictPort: port !== 0, host: '127.0.0.1', hmr: false, watch: null, fs: { allow: [root, realpathSync(join(root, 'node_modules'))] } },
    logLevel: 'warn',
  });
  await server.listen();
  const address = server.httpServer!.address();
  const actualPort = typeof address === 'object' && address ? address.port : port;
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    // Audio plays without a click; measureUserAgentSpecificMemory measures at once (by default it
    // waits for the next GC, up to 20 s: 13 s measured here); performance.memory unrounded where
    // it is the fallback, read after a forced GC (--expose-gc).
    args: [...CHROMIUM_ARGS, '--autoplay-policy=no-user-gesture-required', '--enable-blink-features=ForceEagerMeasureMemory', '--enable-precise-memory-info', '--js-flags=--expose-gc'],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (msg) => {
      const text = msg.text();
      if (msg.type() === 'log' && text.startsWith('[soak] ')) log(text.slice(7));
      else if (msg.type() === 'error' && !/not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/.test(text)) log(`[page error] ${text}`);
    });
    page.on('pageerror', (err) => log(`[page exception] ${err.message}`));
    await page.goto(`http://127.0.0.1:${actualPort}/scripts/soak/soak.html`);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');

    log(`text: ${settings.generations} generations of ${settings.model} on ${settings.backend}`);
    const textOptions: TextSoakOptions = { backend: settings.backend, threads: settings.threads, model: settings.model, generations: settings.generations, sampleEvery: settings.sampleEvery, maxTokens: settings.maxTokens };
    const text = await page.evaluate((o) => window.soak.text(o), textOptions);
    log(`text: ${text.generations} generations in ${(text.ms / 1000).toFixed(0)} s, errors ${JSON.stringify(text.errors)}, wrong answers ${text.wrongAnswers.length}`);
    const warm = text.samples.slice(3); // after one round of plans
    const textMemory = {
      wasmHeap: series(
        warm.map((s) => s.generation),
        warm.map((s) => s.wasmHeapBytes ?? NaN),
      ),
      jsHeap: {
        ...series(
          warm.map((s) => s.generation),
          warm.map((s) => s.jsHeap.bytes),
        ),
        source: text.samples[0]!.jsHeap.source,
      },
    };

    log(`codec: ${settings.minutes} min of live streaming`);
    const codecOptions = (minutes: number): CodecSoakOptions => ({ backend: settings.backend, threads: settings.threads, seconds: minutes * 60, kbps: [6, 3.2, 9.2, 4.8], switchEveryFrames: 150, loss: [0.02, 0.1, 0], lossEveryFrames: 400, linkJitterMs: settings.linkJitterMs ?? 10, adaptiveJitter: settings.jitterBuffer !== 'fixed' });
    const heapSamples: [number, number][] = [];
    let heapSource: HeapSample['source'] = 'performance.memory';
    const started = Date.now();
    const quietRun = page.evaluate((o) => window.soak.codec(o), codecOptions(settings.minutes));
    let streaming = true;
    void quietRun.finally(() => (streaming = false));
    while (streaming) {
      // The main thread's heap (where the session's state lives): measureUserAgentSpecificMemory
      // did not settle within a 30 s stream once the audio worklets ran (seen here), so it is
      // not used while streaming.
      const heap = await page.evaluate(() => window.soak.jsHeap(false));
      heapSource = heap.source;
      if (streaming) heapSamples.push([(Date.now() - started) / 1000, heap.bytes]);
      const until = Date.now() + settings.sampleSeconds * 1000;
      while (streaming && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const quiet = await quietRun;
    log(`codec: ${codecLine(quiet)}`);

    log(`codec: ${settings.hogMinutes} min with a CPU-hog tab (${settings.hogThreads} spinning workers + its main thread)`);
    const hogPage: Page = await context.newPage();
    await hogPage.goto(`http://localhost:${actualPort}/scripts/soak/hog.html?threads=${settings.hogThreads}`);
    await hogPage.waitForFunction(() => document.getElementById('status')?.textContent?.startsWith('spinning (main thread'));
    let hog: CodecSoakResult;
    try {
      hog = await page.evaluate((o) => window.soak.codec(o), codecOptions(settings.hogMinutes));
    } finally {
      await hogPage.close();
    }
    log(`codec (hog): ${codecLine(hog)}`);

    const warmHeap = heapSamples.slice(1);
    const codecMemory = {
      jsHeap: {
        ...series(
          warmHeap.map(([t]) => t),
          warmHeap.map(([, b]) => b),
        ),
        source: heapSource,
      },
    };
    const untyped = text.errors.untyped.length + quiet.errors.untyped.length + hog.errors.untyped.length;
    const other = errorCount(text.errors) + errorCount(quiet.errors) + errorCount(hog.errors);
    const flat = textMemory.wasmHeap.verdict.flat && textMemory.jsHeap.verdict.flat && codecMemory.jsHeap.verdict.flat;
    const { samples, ...textRest } = text;
    return {
      options: settings,
      machine: { cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) },
      text: { ...textRest, memory: textMemory, samples: samples.map((s) => [s.generation, s.wasmHeapBytes, s.jsHeap.bytes]) },
      codec: { quiet, hog: { ...hog, hogThreads: settings.hogThreads }, memory: codecMemory, samples: heapSamples },
      gpuBuffers: null,
      summary: { untypedErrors: untyped, otherErrors: other, wrongAnswers: text.wrongAnswers.length, flat },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
