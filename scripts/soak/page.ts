/**
 * The page scripts/soak/main.ts drives (window.soak): long runs of the public SDK in headless
 * Chromium, measuring what a long-lived app would leak.
 *
 * - text(): N generations on one TextModel, switching plans (full, pruned, early exit) and mixing
 *   plain greedy, self-speculative, aborted and sampled generations; greedy answers are checked
 *   against the first answer for the same plan and prompt (speculation must not change them);
 *   the worker's WASM heap and the page's JS heap are sampled every `sampleEvery` generations.
 * - codec(): live streaming (capture -> encode -> lossy link -> jitter buffer -> decode/conceal ->
 *   playback) of a looping clip for a given time, switching bitrate and loss as it goes.
 * - codecStream(): the codec's streaming encoder and decoder without the live session (no audio
 *   clock: as fast as the backend goes; for WebGPU on SwiftShader, too slow for real time),
 *   switching bitrate every few frames and losing packets, its worker's GPU buffers sampled.
 * - jsHeap(): the page's JS memory, with its workers when the page is cross-origin isolated.
 *
 * On WebGPU the models run in a worker that counts its GPU buffers (gpu-count.worker.ts), and the
 * live ones (created - destroyed) are sampled with the other resources.
 */
import * as whittle from 'whittle';
import type { LlamaPlan, LiveStats, TextModel } from 'whittle';
import { createRng } from '../../core/random.ts';
import { gpuBuffers } from '../../e2e/pages/gpu-buffer-count.ts';

/** A model's worker that counts its GPU buffers (a `spawn` for Whittle's text() and codec()). */
const countingWorker = (name: string): Worker => new Worker(new URL('./gpu-count.worker.ts', import.meta.url), { type: 'module', name });

/** The live GPU buffers (created - destroyed) of `worker`, which must be a counting one. */
async function liveGpuBuffers(worker: Worker): Promise<number> {
  const count = await gpuBuffers(worker);
  return count.created - count.destroyed;
}

export interface HeapSample {
  bytes: number;
  /** 'measureUserAgentSpecificMemory' (page + its workers, after a GC) or 'performance.memory' (main thread's heap only, after a forced GC). */
  source: 'measureUserAgentSpecificMemory' | 'performance.memory';
}

export interface TextSample {
  generation: number;
  plan: string;
  wasmHeapBytes: number | null;
  jsHeap: HeapSample;
  /** The worker's live GPU buffers (WebGPU; null on WASM). */
  gpuBuffers: number | null;
}

export interface TextSoakOptions {
  backend: 'wasm' | 'webgpu';
  /** onnxruntime's WASM threads (Whittle.create maxThreads); 1 lets jsHeap measure the workers too. */
  threads: number;
  model: string;
  generations: number;
  /** A plan switch and a memory sample every this many generations. */
  sampleEvery: number;
  maxTokens: number;
}

export interface TextSoakResult {
  generations: number;
  kinds: Record<'plain' | 'speculative' | 'aborted' | 'sampled', number>;
  /** Wall time spent per kind of generation, and on plan switches, ms. */
  kindMs: Record<'plain' | 'speculative' | 'aborted' | 'sampled' | 'planSwitch', number>;
  planSwitches: number;
  /** Greedy answers that differed from the first answer for the same plan and prompt. */
  wrongAnswers: { generation: number; kind: string; plan: string }[];
  /** Errors other than the aborts asked for: typed (WhittleError code counts) and untyped (messages). */
  errors: { typed: Record<string, number>; untyped: string[] };
  samples: TextSample[];
  ms: number;
}

export interface CodecSoakOptions {
  backend: 'wasm' | 'webgpu';
  threads: number;
  seconds: number;
  /** Bitrates cycled through, one switch every `switchEveryFrames`. */
  kbps: number[];
  switchEveryFrames: number;
  /** Link loss rates cycled through, one change every `lossEveryFrames`. */
  loss: number[];
  lossEveryFrames: number;
  /** The link's jitter, ms (uniform 0..this). */
  linkJitterMs: number;
  /** The network jitter buffer adapts (true) or stays at 3 frames (false). */
  adaptiveJitter: boolean;
}

export interface CodecSoakResult {
  frames: number;
  packetsSent: number;
  packetsDropped: number;
  /** Slots the decoder concealed (packets the link lost or that came late). */
  concealed: number;
  late: number;
  /** Times playback ran dry (the playback buffer concealed the slots: see `playout`). */
  underruns: number;
  switches: number;
  /**
   * Capture-to-playback latency over the run: p50/p99 of every measured value, `last` at the end,
   * `configured` what the settings imply (the playback buffer's target at the end included).
   */
  latencyMs: { p50: number | null; p99: number | null; max: number | null; last: number | null; configured: number };
  engineMsPerFrame: { p50: number | null; p99: number | null };
  /** The playback worklet's buffer at the end (frames played, concealed, dropped to win latency back; its target). */
  playout: whittle.LiveStats['playout'];
  /** The network jitter buffer at the end: its adaptive target and delay, RFC 3550 jitter, times it grew and shrank. */
  jitter: whittle.LiveStats['jitter'];
  /** Frames skipped at the sender behind real time, and the most frames ever waiting for the worker. */
  skipped: number;
  backlogMax: number;
  /** Per-stage times at the end (recent averages, ms) and the codec's warm-up, ms per frame. */
  stageMs: whittle.LiveStats['stageMs'];
  warmUpMs: number[];
  errors: { typed: Record<string, number>; untyped: string[] };
  seconds: number;
}

/**
 * The page's JS memory. measureUserAgentSpecificMemory (page and workers) needs every worker of
 * the page to answer, and onnxruntime's WASM threads, parked in Atomics.wait between runs, never
 * do: with more than one thread the call only settles at its 60 s timeout (measured), so `whole`
 * is false there and the main thread's heap (performance.memory) is what is sampled.
 */
async function jsHeap(whole = true): Promise<HeapSample> {
  const perf = performance as Performance & {
    measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }>;
    memory?: { usedJSHeapSize: number };
  };
  if (whole && crossOriginIsolated && perf.measureUserAgentSpecificMemory) {
    return { bytes: (await perf.measureUserAgentSpecificMemory()).bytes, source: 'measureUserAgentSpecificMemory' };
  }
  // After a full GC (the runner starts Chromium with --expose-gc): live objects, not garbage
  // that the next major GC would take.
  (globalThis as { gc?: () => void }).gc?.();
  return { bytes: perf.memory?.usedJSHeapSize ?? NaN, source: 'performance.memory' };
}

function recordError(errors: { typed: Record<string, number>; untyped: string[] }, err: unknown): void {
  if (err instanceof whittle.WhittleError) errors.typed[err.code] = (errors.typed[err.code] ?? 0) + 1;
  else errors.untyped.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
}

const PROMPTS = ['Once upon a time', 'Tom had a red ball.', 'One day, a little bird', 'The sun was hot and'];

/** Full depth, one middle block dropped, and full depth with an early exit two blocks in. */
function plansFor(nLayers: number): { name: string; plan: LlamaPlan }[] {
  const all = Array.from({ length: nLayers }, (_, i) => i);
  return [
    { name: 'full', plan: { layers: all } },
    { name: 'pruned', plan: { layers: all.filter((l) => l !== Math.floor(nLayers / 2)) } },
    { name: 'exit', plan: { layers: all, exit: 2 } },
  ];
}

async function text(options: TextSoakOptions): Promise<TextSoakResult> {
  const t0 = performance.now();
  const w = await whittle.Whittle.create({ backend: options.backend, storeName: 'soak', maxThreads: options.threads });
  const gpu = options.backend === 'webgpu';
  const lm: TextModel = await w.text(options.model, gpu ? { spawn: countingWorker } : {});
  const gpuSample = async () => (gpu ? liveGpuBuffers(await lm.worker()) : null);
  const plans = plansFor(lm.info.nLayers);
  const result: TextSoakResult = {
    generations: 0,
    kinds: { plain: 0, speculative: 0, aborted: 0, sampled: 0 },
    kindMs: { plain: 0, speculative: 0, aborted: 0, sampled: 0, planSwitch: 0 },
    planSwitches: 0,
    wrongAnswers: [],
    errors: { typed: {}, untyped: [] },
    samples: [],
    ms: 0,
  };
  const firstAnswer = new Map<string, string>();
  let plan = plans[0]!;
  for (let i = 0; i < options.generations; i++) {
    const prompt = PROMPTS[i % PROMPTS.length]!;
    try {
      if (i % options.sampleEvery === 0) {
        plan = plans[(i / options.sampleEvery) % plans.length]!;
        const t = performance.now();
        const info = await lm.setPlan(plan.plan);
        result.kindMs.planSwitch += performance.now() - t;
        result.planSwitches++;
        result.samples.push({
          generation: i,
          plan: plan.name,
          wasmHeapBytes: info.memory.wasmHeapBytes,
          jsHeap: await jsHeap(options.threads === 1),
          gpuBuffers: await gpuSample(),
        });
        console.log(`[soak] generation ${i}, plan ${plan.name}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
      }
      const kindStart = performance.now();
      const greedy = { maxTokens: options.maxTokens, greedy: true, stopTokens: [] as number[] };
      const check = (kind: string, tokens: number[]) => {
        const key = `${plan.name}|${prompt}`;
        const answer = tokens.join(',');
        const first = firstAnswer.get(key);
        if (first === undefined) firstAnswer.set(key, answer);
        else if (first !== answer) result.wrongAnswers.push({ generation: i, kind, plan: plan.name });
      };
      switch (i % 4) {
        case 0:
          check('plain', (await lm.complete(prompt, greedy)).tokens);
          result.kinds.plain++;
          result.kindMs.plain += performance.now() - kindStart;
          break;
        case 1:
          // Drafts through block 2's exit, verified by the rest: greedy output equals plain greedy.
          check('speculative', (await lm.complete(prompt, { ...greedy, speculate: { exit: 2, draft: 3 } })).tokens);
          result.kinds.speculative++;
          result.kindMs.speculative += performance.now() - kindStart;
          break;
        case 2: {
          const controller = new AbortController();
          const stopAfter = 1 + (i % 5);
          let seen = 0;
          try {
            for await (const ev of lm.generate(prompt, { ...greedy, maxTokens: options.maxTokens + 8, signal: controller.signal })) {
              if (ev.type === 'token' && ++seen === stopAfter) controller.abort();
            }
            throw new Error(`the stream aborted after ${stopAfter} tokens ran to its end`);
          } catch (err) {
            if (!(err instanceof whittle.WhittleError && err.code === 'ABORTED')) throw err;
          }
          result.kinds.aborted++;
          result.kindMs.aborted += performance.now() - kindStart;
          break;
        }
        default:
          await lm.complete(prompt, { maxTokens: options.maxTokens, temperature: 0.8, topP: 0.9, seed: i });
          result.kinds.sampled++;
          result.kindMs.sampled += performance.now() - kindStart;
      }
    } catch (err) {
      recordError(result.errors, err);
    }
    result.generations++;
  }
  // The closing sample, after the last generation, on the plan in force.
  const info = await lm.setPlan(plan.plan);
  result.samples.push({
    generation: options.generations,
    plan: plan.name,
    wasmHeapBytes: info.memory.wasmHeapBytes,
    jsHeap: await jsHeap(options.threads === 1),
    gpuBuffers: await gpuSample(),
  });
  lm.dispose();
  result.ms = performance.now() - t0;
  return result;
}

let codecModel: Promise<whittle.Codec> | null = null;
let clip: Promise<ArrayBuffer> | null = null;

function quantile(values: number[], q: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function codec(options: CodecSoakOptions): Promise<CodecSoakResult> {
  codecModel ??= whittle.Whittle.create({ backend: options.backend, storeName: 'soak', maxThreads: options.threads }).then((w) =>
    w.codec('lyra-v2'),
  );
  clip ??= fetch('/models/lyra-testdata/sample1_16kHz.wav').then((r) => r.arrayBuffer());
  const model = await codecModel;
  const context = new AudioContext({ sampleRate: 16000 });
  await context.resume();
  const buffer = await context.decodeAudioData((await clip).slice(0));
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.loop = true; // speech without end: the session runs until stop()
  const errors: CodecSoakResult['errors'] = { typed: {}, untyped: [] };
  const onError = (ev: PromiseRejectionEvent | ErrorEvent) => recordError(errors, 'reason' in ev ? ev.reason : ev.error);
  window.addEventListener('unhandledrejection', onError);
  window.addEventListener('error', onError);
  // LiveSession reports a failed frame on the console (its frame chain must go on): count those too.
  const consoleError = console.error;
  console.error = (...args: unknown[]) => {
    if (args[0] === '[whittle live]') recordError(errors, args[1]);
    consoleError(...args);
  };
  const live = await whittle.LiveSession.create(context, model, {
    link: { kbps: 16, delayMs: 40, jitterMs: options.linkJitterMs, loss: options.loss[0]!, burstiness: 0.5, seed: 1 },
    jitterFrames: 3,
    jitter: { adaptive: options.adaptiveJitter },
    kbps: options.kbps[0]!,
  });
  const latencies: number[] = [];
  const engineMs: number[] = [];
  let lastLatency: number | null = null;
  live.onStats = (s: LiveStats) => {
    const frame = s.framesCaptured;
    if (s.measuredLatencyMs !== null && s.measuredLatencyMs !== lastLatency) latencies.push((lastLatency = s.measuredLatencyMs));
    engineMs.push(s.engineMsPerFrame);
    if (frame % options.switchEveryFrames === 0) live.setBitrate(options.kbps[(frame / options.switchEveryFrames) % options.kbps.length]!);
    if (frame % options.lossEveryFrames === 0)
      live.setLink({ loss: options.loss[(frame / options.lossEveryFrames) % options.loss.length]! });
  };
  source.connect(live.input);
  live.output.connect(context.destination);
  const t0 = performance.now();
  source.start();
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  source.stop();
  live.stop();
  await live.finished();
  // Let the last frames sent play out before the counters are read.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const s = live.stats;
  live.output.disconnect();
  await context.close();
  window.removeEventListener('unhandledrejection', onError);
  window.removeEventListener('error', onError);
  console.error = consoleError;
  return {
    frames: s.framesCaptured,
    packetsSent: s.packetsSent,
    packetsDropped: s.packetsDropped,
    concealed: s.concealed,
    late: s.late,
    underruns: s.underruns,
    switches: s.switches.length,
    latencyMs: {
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: quantile(latencies, 1),
      last: s.measuredLatencyMs,
      configured: s.configuredLatencyMs,
    },
    engineMsPerFrame: { p50: quantile(engineMs, 0.5), p99: quantile(engineMs, 0.99) },
    playout: s.playout,
    jitter: s.jitter,
    skipped: s.skipped,
    backlogMax: s.backlogMax,
    stageMs: s.stageMs,
    warmUpMs: s.warmUpMs,
    errors,
    seconds: (performance.now() - t0) / 1000,
  };
}

export interface CodecStreamOptions {
  backend: 'wasm' | 'webgpu';
  threads: number;
  frames: number;
  /** Bitrates cycled through, one switch every `switchEveryFrames`. */
  kbps: number[];
  switchEveryFrames: number;
  /** Share of packets lost (seeded): their slots are concealed. */
  loss: number;
  seed: number;
  /** A GPU buffer sample every this many frames (WebGPU). */
  sampleEvery: number;
}

export interface CodecStreamResult {
  frames: number;
  /** Slots decoded from a packet, and concealed for a lost one. */
  decoded: number;
  concealed: number;
  switches: number;
  /** Decoded or concealed samples that were not finite numbers (a broken stream, not a leak). */
  nonFinite: number;
  errors: { typed: Record<string, number>; untyped: string[] };
  /** [frames streamed, the worker's live GPU buffers] (WebGPU; empty on WASM). */
  gpuBuffers: [number, number][];
  /** Wall time per frame (encode + decode round trips, one frame each), ms. */
  msPerFrame: { p50: number | null; p99: number | null };
  seconds: number;
}

/**
 * The codec's streaming encoder and decoder, one frame per call each (as the live session sends
 * them when it keeps up), on a looping clip: bitrate switches every `switchEveryFrames`, a seeded
 * share of packets lost (the decoder conceals those slots). Its own Codec (and worker).
 */
async function codecStream(options: CodecStreamOptions): Promise<CodecStreamResult> {
  const t0 = performance.now();
  const gpu = options.backend === 'webgpu';
  const w = await whittle.Whittle.create({ backend: options.backend, storeName: 'soak', maxThreads: options.threads });
  const model = await w.codec('lyra-v2', gpu ? { spawn: countingWorker } : {});
  clip ??= fetch('/models/lyra-testdata/sample1_16kHz.wav').then((r) => r.arrayBuffer());
  const audio = (await new OfflineAudioContext(1, 1, 16000).decodeAudioData((await clip).slice(0))).getChannelData(0);
  const FRAME = 320;
  const clipFrames = Math.floor(audio.length / FRAME);
  const encoder = model.encoder({ kbps: options.kbps[0]! });
  const decoder = model.decoder();
  const random = createRng(options.seed); // the same losses on every run and backend
  const result: CodecStreamResult = {
    frames: 0,
    decoded: 0,
    concealed: 0,
    switches: 0,
    nonFinite: 0,
    errors: { typed: {}, untyped: [] },
    gpuBuffers: [],
    msPerFrame: { p50: null, p99: null },
    seconds: 0,
  };
  const frameMs: number[] = [];
  const sample = async (frame: number) => {
    if (gpu) result.gpuBuffers.push([frame, await liveGpuBuffers(await model.worker())]);
  };
  for (let i = 0; i < options.frames; i++) {
    const t = performance.now();
    try {
      if (i % options.sampleEvery === 0) await sample(i);
      if (i > 0 && i % options.switchEveryFrames === 0) {
        encoder.setBitrate(options.kbps[(i / options.switchEveryFrames) % options.kbps.length]!);
        result.switches++;
      }
      const at = (i % clipFrames) * FRAME;
      const { packets } = await encoder.encode(audio.slice(at, at + FRAME));
      const lost = random() < options.loss;
      const out = await decoder.decodeSlots([lost ? null : packets]);
      if (lost) result.concealed++;
      else result.decoded++;
      for (const x of out.pcm) if (!Number.isFinite(x)) result.nonFinite++;
    } catch (err) {
      recordError(result.errors, err);
    }
    result.frames++;
    frameMs.push(performance.now() - t);
    if (i % 100 === 99) console.log(`[soak] codec stream: frame ${i + 1}, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  await sample(options.frames); // the closing sample, after the last frame
  model.dispose();
  result.msPerFrame = { p50: quantile(frameMs, 0.5), p99: quantile(frameMs, 0.99) };
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

const soak = { text, codec, codecStream, jsHeap };
declare global {
  interface Window {
    soak: typeof soak;
  }
}
window.soak = soak;
document.getElementById('status')!.textContent = 'ready';
