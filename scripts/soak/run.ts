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
 * On WebGPU (`backend: 'webgpu'`; SwiftShader here, a CPU emulation, so the defaults are
 * smaller) the text run is the same mix through a worker that counts its GPU buffers, sampled at
 * every plan switch; the live session is too slow for real time there, so step 2 is instead
 * `codecFrames` frames of the codec's streaming encoder and decoder (bitrate switches every few
 * frames, 10% of packets lost and concealed), GPU buffers sampled every `codecSampleEvery` frames.
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
import { chromiumFlags } from '../../sdk/playwright/projects.ts';
import { GPU_BUFFER_FLOOR, growthVerdict, HEAP_FLOOR, type GrowthFloor, type GrowthVerdict } from './growth.ts';
import type {
  CodecSoakOptions,
  CodecSoakResult,
  CodecStreamOptions,
  CodecStreamResult,
  HeapSample,
  TextSoakOptions,
  TextSoakResult,
} from './page.ts';

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
  /** WebGPU only: frames of the codec's streaming encoder and decoder (the live session's minutes are not run there). */
  codecFrames: number;
  /** WebGPU only: a GPU buffer sample every this many of those frames. */
  codecSampleEvery: number;
  port: number;
  log: (line: string) => void;
}

export type SoakSettings = Omit<SoakOptions, 'log' | 'port'>;

export const LONG: SoakSettings = {
  backend: 'wasm',
  threads: 1,
  model: 'stories260K',
  generations: 1000,
  sampleEvery: 20,
  maxTokens: 16,
  minutes: 10,
  hogMinutes: 2,
  hogThreads: 1,
  sampleSeconds: 30,
  codecFrames: 0,
  codecSampleEvery: 25,
};
/** The CI run: about two minutes on a quiet 2-core machine. */
export const SHORT: SoakSettings = {
  backend: 'wasm',
  threads: 1,
  model: 'stories260K',
  generations: 400,
  sampleEvery: 20,
  maxTokens: 12,
  minutes: 0.5,
  hogMinutes: 0.25,
  hogThreads: 1,
  sampleSeconds: 5,
  codecFrames: 0,
  codecSampleEvery: 25,
};
/**
 * WebGPU on SwiftShader (a CPU emulation: ~1 s a generation and ~150 ms a codec frame at load 20
 * on 2 cores, and a plan switch recompiles every shader on a fresh device, ~30 s; see
 * workers/text/engine.ts setPlan; the first generations on it compile theirs): the same mix in 72
 * shorter generations with a plan switch (and a GPU buffer sample) every 12, and 600 streamed codec
 * frames; about 8 minutes (96 generations took 10.3 min at load 10-22).
 */
export const LONG_WEBGPU: SoakSettings = {
  ...LONG,
  backend: 'webgpu',
  generations: 72,
  sampleEvery: 12,
  maxTokens: 8,
  minutes: 0,
  hogMinutes: 0,
  codecFrames: 600,
  codecSampleEvery: 25,
};
/** A quick check on WebGPU (not in CI: a few minutes on SwiftShader, most of it compiling shaders). */
export const SHORT_WEBGPU: SoakSettings = { ...LONG_WEBGPU, generations: 16, sampleEvery: 4, maxTokens: 3, codecFrames: 40, codecSampleEvery: 10 };

/** The defaults for a backend: the long run (the command) or the short one (CI). */
export function soakDefaults(backend: 'wasm' | 'webgpu', short: boolean): SoakSettings {
  if (backend === 'webgpu') return short ? SHORT_WEBGPU : LONG_WEBGPU;
  return short ? SHORT : LONG;
}

/** Frames between bitrate switches in the WebGPU codec stream. */
const STREAM_SWITCH_EVERY = 4;

interface Series {
  start: number;
  end: number;
  verdict: GrowthVerdict;
}

/** A worker's live GPU buffers (created - destroyed) over a run: [x, count] pairs and their verdict. */
type GpuSeries = Series & { samples: [number, number][] };

export interface SoakResult {
  options: SoakSettings;
  machine: { cpus: number; loadavg: number[] };
  text: Omit<TextSoakResult, 'samples'> & {
    wrongAnswers: TextSoakResult['wrongAnswers'];
    memory: { wasmHeap: Series; jsHeap: Series & { source: HeapSample['source'] } };
    /** [generation, WASM heap bytes, JS heap bytes] at each plan switch. */
    samples: [number, number | null, number][];
  };
  /** The live session (WASM); null on WebGPU, where `codecStream` runs instead. */
  codec: {
    quiet: CodecSoakResult;
    hog: CodecSoakResult & { hogThreads: number };
    memory: { jsHeap: Series & { source: HeapSample['source'] } };
    /** [seconds since the stream started, main-thread JS heap bytes (performance.memory)] during the quiet stream. */
    samples: [number, number][];
  } | null;
  /** The codec's streaming encoder and decoder on WebGPU (its GPU buffer samples are under `gpuBuffers.codec`); null on WASM. */
  codecStream: Omit<CodecStreamResult, 'gpuBuffers'> | null;
  /**
   * The model workers' live GPU buffers (WebGPU): text at every plan switch (x: generation),
   * the codec every `codecSampleEvery` frames (x: frame); null on WASM, which has none.
   */
  gpuBuffers: { text: GpuSeries; codec: GpuSeries } | null;
  /** nonFinite: decoded samples of the WebGPU codec stream that were not finite numbers (0 on WASM). */
  summary: { untypedErrors: number; otherErrors: number; wrongAnswers: number; flat: boolean; nonFinite: number };
}

function series(xs: number[], ys: number[], floor: GrowthFloor = HEAP_FLOOR): Series {
  return { start: ys[0] ?? NaN, end: ys[ys.length - 1] ?? NaN, verdict: growthVerdict(xs, ys, floor) };
}

/** The verdict on GPU buffer samples, from `warmFrom` on (the samples before are warm-up). */
function gpuSeries(samples: [number, number][], warmFrom: number): GpuSeries {
  const warm = samples.slice(warmFrom);
  return {
    ...series(
      warm.map(([x]) => x),
      warm.map(([, y]) => y),
      GPU_BUFFER_FLOOR,
    ),
    samples,
  };
}

/** One line on how a live stream kept time: continuity (underruns, concealed and dropped slots) and latency. */
function codecLine(r: CodecSoakResult): string {
  const p = r.playout;
  const ms = (x: number | null) => (x === null ? '-' : x.toFixed(0));
  return `${r.frames} frames, ${r.underruns} underruns (${p?.concealed ?? 0} slots concealed, ${p?.dropped ?? 0} dropped to win latency back, ${r.skipped} skipped behind real time), latency p50 ${ms(r.latencyMs.p50)} p99 ${ms(r.latencyMs.p99)} last ${ms(r.latencyMs.last)} ms (configured ${ms(r.latencyMs.configured)}), ${r.late} late packets, jitter buffer ${r.jitter.targetFrames} frames (${r.jitter.delayMs} ms after sending)`;
}

const errorCount = (e: { typed: Record<string, number>; untyped: string[] }) => Object.values(e.typed).reduce((a, b) => a + b, 0);

/** Step 2 on WASM: `minutes` of the live session, then `hogMinutes` beside a CPU-hog tab. */
async function liveCodec(
  page: Page,
  settings: SoakSettings,
  port: number,
  log: (line: string) => void,
): Promise<NonNullable<SoakResult['codec']>> {
  log(`codec: ${settings.minutes} min of live streaming`);
  const codecOptions = (minutes: number): CodecSoakOptions => ({
    backend: settings.backend,
    threads: settings.threads,
    seconds: minutes * 60,
    kbps: [6, 3.2, 9.2, 4.8],
    switchEveryFrames: 150,
    loss: [0.02, 0.1, 0],
    lossEveryFrames: 400,
    linkJitterMs: settings.linkJitterMs ?? 10,
    adaptiveJitter: settings.jitterBuffer !== 'fixed',
  });
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
  const hogPage: Page = await page.context().newPage();
  await hogPage.goto(`http://localhost:${port}/scripts/soak/hog.html?threads=${settings.hogThreads}`);
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
  return { quiet, hog: { ...hog, hogThreads: settings.hogThreads }, memory: codecMemory, samples: heapSamples };
}

/** Step 2 on WebGPU: `codecFrames` frames of the codec's streaming encoder and decoder, GPU buffers sampled. */
async function codecStream(page: Page, settings: SoakSettings, log: (line: string) => void): Promise<CodecStreamResult> {
  log(
    `codec: ${settings.codecFrames} frames of the streaming encoder and decoder on ${settings.backend}, a bitrate switch every ${STREAM_SWITCH_EVERY} frames, 10% of packets lost`,
  );
  const options: CodecStreamOptions = {
    backend: settings.backend,
    threads: settings.threads,
    frames: settings.codecFrames,
    kbps: [6, 3.2, 9.2, 4.8],
    switchEveryFrames: STREAM_SWITCH_EVERY,
    loss: 0.1,
    seed: 1,
    sampleEvery: settings.codecSampleEvery,
  };
  const r = await page.evaluate((o) => window.soak.codecStream(o), options);
  const ms = (x: number | null) => (x === null ? '-' : x.toFixed(0));
  log(
    `codec: ${r.frames} frames (${r.decoded} decoded, ${r.concealed} concealed, ${r.switches} switches) in ${r.seconds.toFixed(0)} s, ${ms(r.msPerFrame.p50)} / ${ms(r.msPerFrame.p99)} ms per frame p50 / p99, errors ${JSON.stringify(r.errors)}, ${r.nonFinite} non-finite samples`,
  );
  return r;
}

function gpuLine(g: GpuSeries): string {
  return `${g.start} -> ${g.end} live buffers, fitted growth ${g.verdict.growth.toFixed(1)} (bound ${g.verdict.bound.toFixed(1)}): ${g.verdict.flat ? 'flat' : 'GROWING'}`;
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { log, port, ...settings } = options;
  const root = join(import.meta.dirname, '../..');
  // node_modules may be a symlink (a shared install, a workspace): let Vite serve where it points.
  const server = await createServer({
    configFile: join(root, 'vite.config.ts'),
    // No HMR, no watching: an edited file must not reload the page in the middle of a run.
    server: {
      port,
      strictPort: port !== 0,
      host: '127.0.0.1',
      hmr: false,
      watch: null,
      fs: { allow: [root, realpathSync(join(root, 'node_modules'))] },
    },
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
    args: [
      ...CHROMIUM_ARGS,
      // WebGPU: SwiftShader, the adapter the e2e webgpu project uses, wherever this runs.
      ...(settings.backend === 'webgpu' ? chromiumFlags('webgpu-swiftshader') : []),
      '--autoplay-policy=no-user-gesture-required',
      '--enable-blink-features=ForceEagerMeasureMemory',
      '--enable-precise-memory-info',
      '--js-flags=--expose-gc',
    ],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    page.on('console', (msg) => {
      const text = msg.text();
      if (msg.type() === 'log' && text.startsWith('[soak] ')) log(text.slice(7));
      else if (msg.type() === 'error' && !/not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/.test(text))
        log(`[page error] ${text}`);
    });
    page.on('pageerror', (err) => log(`[page exception] ${err.message}`));
    await page.goto(`http://127.0.0.1:${actualPort}/scripts/soak/soak.html`);
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'ready');

    log(`text: ${settings.generations} generations of ${settings.model} on ${settings.backend}`);
    const textOptions: TextSoakOptions = {
      backend: settings.backend,
      threads: settings.threads,
      model: settings.model,
      generations: settings.generations,
      sampleEvery: settings.sampleEvery,
      maxTokens: settings.maxTokens,
    };
    const text = await page.evaluate((o) => window.soak.text(o), textOptions);
    log(
      `text: ${text.generations} generations in ${(text.ms / 1000).toFixed(0)} s, errors ${JSON.stringify(text.errors)}, wrong answers ${text.wrongAnswers.length}`,
    );
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

    const codecRun = settings.backend === 'webgpu' ? null : await liveCodec(page, settings, actualPort, log);
    const stream = settings.backend === 'webgpu' ? await codecStream(page, settings, log) : null;
    const codecErrors = codecRun ? [codecRun.quiet.errors, codecRun.hog.errors] : [stream!.errors];
    const untyped = [text.errors, ...codecErrors].reduce((n, e) => n + e.untyped.length, 0);
    const other = [text.errors, ...codecErrors].reduce((n, e) => n + errorCount(e), 0);
    const gpu =
      settings.backend === 'webgpu'
        ? {
            text: gpuSeries(
              text.samples.map((s) => [s.generation, s.gpuBuffers ?? NaN]),
              3, // after one round of plans
            ),
            codec: gpuSeries(stream!.gpuBuffers, 1),
          }
        : null;
    if (gpu) log(`GPU buffers: text ${gpuLine(gpu.text)}; codec ${gpuLine(gpu.codec)}`);
    const flat =
      textMemory.wasmHeap.verdict.flat &&
      textMemory.jsHeap.verdict.flat &&
      (codecRun?.memory.jsHeap.verdict.flat ?? true) &&
      (gpu ? gpu.text.verdict.flat && gpu.codec.verdict.flat : true);
    const { samples, ...textRest } = text;
    const streamRest = stream ? (({ gpuBuffers: _, ...rest }) => rest)(stream) : null;
    return {
      options: settings,
      machine: { cpus: cpus().length, loadavg: loadavg().map((l) => Math.round(l * 100) / 100) },
      text: { ...textRest, memory: textMemory, samples: samples.map((s) => [s.generation, s.wasmHeapBytes, s.jsHeap.bytes]) },
      codec: codecRun,
      codecStream: streamRest,
      gpuBuffers: gpu,
      summary: {
        untypedErrors: untyped,
        otherErrors: other,
        wrongAnswers: text.wrongAnswers.length,
        flat,
        nonFinite: stream?.nonFinite ?? 0,
      },
    };
  } finally {
    await browser.close();
    await server.close();
  }
}
