/**
 * One contender of the scale benchmark (bench/scale.ts drives it): a fresh browser context
 * (empty storage) per page, so the first load really downloads. In order:
 *   1. first load: download into the contender's cache + parse + compile (+ compress for q8/q4)
 *   2. the handle is dropped; a second load from that cache (a new worker)
 *   3. one short warm-up generation (the same 128-token prompt, 8 new tokens): both runtimes
 *      pay first-run costs (kernel selection, V8 tier-up) on their first prompt pass
 *   4. the measured generation: greedy, 128-token prompt, 128 new tokens, EOS not allowed to stop it
 * Process memory is read by the runner at the marks (window.scaleMark, exposed by bench/scale.ts):
 * the peak resident set of this page's renderer process during 1 and during 2–4 (the workers,
 * their WASM heaps and the page's JS heap all live in that process).
 *
 * Query: contender=whittle|transformersjs|wllama, model=<folder under /models/>, weights=f32|q8|q4,
 * threads=1|2, prompt=128, new=128, backend=wasm|webgpu (Whittle only); for wllama also text=<the prompt as 128 one-token words>
 * (bench/pages/scale-wllama.ts says why), its GGUF being bench/out/gguf/<model>/<model>-<type>.gguf.
 */
import * as Comlink from 'comlink';
import { Whittle, type StoreEvent, type WeightsSetting } from 'whittle';
import type { ScalePeerLoad, ScalePeerRun } from './scale.peer-worker.ts';
import { wllamaContender } from './scale-wllama.ts';
import { log, report } from './page.ts';

/** What the runner's process probe returns at a mark (null where the page runs without the runner). */
export interface ProcessMemory {
  /** Peak resident set (VmHWM) of the renderer since the previous mark, MiB. */
  peak_mb: number;
  /** Resident set now (VmRSS), MiB. */
  rss_mb: number;
}

const params = new URLSearchParams(location.search);
const contender = params.get('contender') ?? 'whittle';
const model = params.get('model') ?? 'synthetic-smollm2-135m';
const weights = (params.get('weights') ?? 'f32') as WeightsSetting['linear'];
const threads = Number(params.get('threads') ?? '1');
/** Whittle's backend (the peers always run WASM). */
const backend = params.get('backend') === 'webgpu' ? 'webgpu' : 'wasm';
const promptTokens = Number(params.get('prompt') ?? '128');
const newTokens = Number(params.get('new') ?? '128');
const vocab = Number(params.get('vocab') ?? '49152');
const WARM_UP_TOKENS = 8;

/**
 * The prompt as token ids, the same for both contenders: a fixed spread over the vocabulary
 * (the weights are random, so the text would mean nothing; ids avoid 0..15, the special tokens
 * of these tokenizers).
 */
const PROMPT = Array.from({ length: promptTokens }, (_, i) => 16 + ((i * 7919 + 104729) % (vocab - 16)));

const mark = async (label: string): Promise<ProcessMemory | null> => {
  const probe = (window as unknown as { scaleMark?: (label: string) => Promise<ProcessMemory | null> }).scaleMark;
  return probe ? probe(label) : null;
};

/** Chromium's own per-page measurement (main thread + workers), when the page is cross-origin isolated; bounded in time. */
async function userAgentMemoryMb(): Promise<number | null> {
  const perf = performance as Performance & { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> };
  if (!crossOriginIsolated || !perf.measureUserAgentSpecificMemory) return null;
  const timeout = new Promise<null>((ok) => setTimeout(() => ok(null), 30_000));
  const measured = await Promise.race([perf.measureUserAgentSpecificMemory(), timeout]);
  return measured ? Math.round((measured.bytes / 2 ** 20) * 10) / 10 : null;
}

interface Generation {
  /** Generated ids (empty for wllama, whose prompt ids differ from the others' anyway). */
  tokens: number[];
  /** How many tokens were generated. */
  generated: number;
  ttftMs: number;
  decodeMs: number;
  /** Contender-specific timing detail (wllama: llama.cpp's timings and the page-side ones). */
  detail?: Record<string, number | null>;
}

interface Contender {
  /** First load (empty cache); returns bytes fetched over the network and bytes the cache holds. */
  load(): Promise<{ networkBytes: number; cachedBytes: number; source: string }>;
  /** Drops the loaded model (its worker ends). */
  drop(): void;
  generate(prompt: number[], n: number): Promise<Generation>;
  describe(): Record<string, unknown>;
}

async function whittleContender(): Promise<Contender> {
  const w = await Whittle.create({ backend, maxThreads: threads, storeName: 'bench-scale' });
  if (backend === 'webgpu' && w.choice.backend !== 'webgpu') throw new Error(`asked for WebGPU, got ${w.choice.backend}: ${w.choice.reason}`);
  if (backend === 'wasm' && w.choice.numThreads !== threads) throw new Error(`asked for ${threads} WASM threads, got ${w.choice.numThreads}: ${w.choice.reason}`);
  const source = { url: `/models/${model}/`, integrity: 'none' as const };
  const compress: WeightsSetting | undefined = weights === 'f32' ? undefined : { linear: weights };
  let lm: Awaited<ReturnType<typeof w.text>> | null = null;
  return {
    async load() {
      let networkBytes = 0;
      const onProgress = (e: StoreEvent) => {
        if (e.type === 'done' && e.source === 'network') networkBytes = e.bytes;
      };
      lm = await w.text(source, { onProgress, ...(compress ? { compress } : {}) });
      // Everything the store holds for it: the source and, with compress, its variant.
      const cachedBytes = (await w.store.list()).reduce((n, e) => n + e.bytes, 0);
      return { networkBytes, cachedBytes, source: lm.source };
    },
    drop() {
      lm?.dispose();
      lm = null;
    },
    async generate(prompt, n) {
      const done = await lm!.complete(prompt, { maxTokens: n, temperature: 0, stopTokens: [], addBos: false });
      return { tokens: done.tokens, generated: done.tokens.length, ttftMs: done.stats.timeToFirstTokenMs, decodeMs: done.stats.decodeMs };
    },
    describe() {
      return {
        choice: w.choice.reason,
        weights_setting: lm?.info.weights ?? 'f32',
        attention: lm?.info.attention,
        node_counts: lm?.info.nodeCounts,
        decode: lm?.info.decode,
      };
    },
  };
}

function transformersContender(): Contender {
  type Peer = { load(id: string, threads: number, dtype: 'fp32' | 'q8' | 'q4'): Promise<ScalePeerLoad>; generate(p: number[], n: number): Promise<ScalePeerRun> };
  // transformers.js's dtype names: q8 = model_quantized.onnx (MatMulInteger), q4 = model_q4.onnx (MatMulNBits).
  const dtype = weights === 'f32' ? 'fp32' : weights;
  let worker: Worker | null = null;
  let peer: Comlink.Remote<Peer> | null = null;
  return {
    async load() {
      worker = new Worker(new URL('./scale.peer-worker.ts', import.meta.url), { type: 'module' });
      peer = Comlink.wrap<Peer>(worker);
      const loaded = await peer.load(model, threads, dtype);
      return { networkBytes: loaded.networkBytes, cachedBytes: loaded.cachedBytes, source: loaded.networkBytes > 0 ? 'network' : 'cache' };
    },
    drop() {
      worker?.terminate();
      worker = null;
      peer = null;
    },
    async generate(prompt, n) {
      const r = await peer!.generate(prompt, n);
      return { tokens: r.tokens, generated: r.tokens.length, ttftMs: r.ttftMs, decodeMs: r.decodeMs };
    },
    describe() {
      return { weights_setting: `${dtype} (dtype: ${dtype}, optimum-style export${dtype === 'q8' ? ', MatMulInteger int8 per tensor' : dtype === 'q4' ? ', MatMulNBits 4-bit blocks of 32' : ''})` };
    },
  };
}

const round1 = (x: number) => Math.round(x * 10) / 10;
/** The GGUF weight type standing for each weights setting (llama.cpp's closest block formats). */
const GGUF_TYPE = { f32: 'F32', q8: 'Q8_0', q4: 'Q4_0' } as const;

async function main() {
  if (contender !== 'whittle' && contender !== 'transformersjs' && contender !== 'wllama')
    throw new Error(`unknown contender ${contender}`);
  const c =
    contender === 'whittle'
      ? await whittleContender()
      : contender === 'wllama'
        ? wllamaContender({
            url: `/bench/out/gguf/${model}/${model}-${GGUF_TYPE[weights]}.gguf`,
            threads,
            promptText: params.get('text') ?? '',
            nCtx: 512, // the 128-token prompt + 128 new tokens, with room
          })
        : transformersContender();
  const memStart = await mark('start');

  // Both loads are timed from the page: worker start, files, parse, compile (and compression) all count.
  let t0 = performance.now();
  const first = await c.load();
  const loadMs = performance.now() - t0;
  if (first.source !== 'network') throw new Error(`the first load came from ${first.source}: the context's storage was not empty`);
  const memFirstLoad = await mark('loaded');
  log(
    `${contender} ${weights} ${threads}t: first load ${Math.round(loadMs)} ms, ${first.networkBytes} bytes fetched, ${first.cachedBytes} cached`,
  );
  c.drop();

  t0 = performance.now();
  const second = await c.load();
  const loadCachedMs = performance.now() - t0;
  if (second.source !== 'cache') throw new Error(`the second load came from ${second.source}, not the cache`);
  log(`${contender} ${weights} ${threads}t: load from cache ${Math.round(loadCachedMs)} ms`);

  await c.generate(PROMPT, WARM_UP_TOKENS);
  const g = await c.generate(PROMPT, newTokens);
  if (g.generated !== newTokens) throw new Error(`generated ${g.generated} tokens, asked for ${newTokens}`);
  const memRun = await mark('end');
  const uaMemoryMb = await userAgentMemoryMb();
  const described = c.describe();
  c.drop();

  const prefill = round1((PROMPT.length / g.ttftMs) * 1000);
  const decode = round1(((g.generated - 1) / g.decodeMs) * 1000);
  log(`${contender} ${weights} ${threads}t: prefill ${prefill} tok/s, decode ${decode} tok/s`);
  return {
    contender,
    model,
    weights,
    threads,
    bytes_downloaded: first.networkBytes,
    bytes_cached: first.cachedBytes,
    load_ms: Math.round(loadMs),
    load_cached_ms: Math.round(loadCachedMs),
    prefill_tok_s: prefill,
    decode_tok_s: decode,
    ttft_ms: round1(g.ttftMs),
    memory: { start: memStart, first_load: memFirstLoad, cached_load_and_generation: memRun, ua_specific_mb: uaMemoryMb },
    tokens: g.tokens,
    ...(g.detail ? { timing_detail: g.detail } : {}),
    ...described,
  };
}

report(main);
