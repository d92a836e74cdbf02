/**
 * `npm run bench:scale -- --json` (bench/run.ts's 'scale' mode calls runScale): Whittle at real
 * model sizes, on synthetic weights in published shapes, against transformers.js and wllama
 * (llama.cpp in WASM) on the same weights, in headless Chromium.
 *
 * For each shape (default SmolLM2-135M; `--shapes smollm2-360m,qwen2.5-0.5b,llama-3.2-1b` for
 * more) x weights {f32, q8, q4} x WASM threads {1, 2}, plus transformers.js f32 and wllama on GGUF
 * F32 / Q8_0 / Q4_0 at 1 and 2 threads:
 * one page per contender per round (bench/pages/scale.ts), each in a fresh Chromium with a fresh
 * profile (launchFresh) so the first load finds empty storage and the page has its own renderer
 * process, whose memory this file reads from /proc. (bench/run.ts's browser only gives the version.) The contenders' order is reversed every other round, and each figure is
 * the median of the rounds with its range; ratios are taken per round (same machine state) and
 * then their median. Nothing here is a result: every number comes from the pages.
 *
 * Preparation (skipped when already done): the synthetic Hugging Face folder is generated into
 * public/models/synthetic-<shape>/ (gitignored, served by the dev server), the transformers.js
 * peer's optimum-style ONNX is exported from it into bench/out/transformersjs/synthetic-<shape>/
 * and its GGUF files into bench/out/gguf/synthetic-<shape>/ (bench/export-gguf.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { REPO_ROOT } from '../models/local.ts';
import { writeSyntheticFolder } from '../models/synthetic/folder.ts';
import { SHAPES, isShapeId, publishedShape } from '../models/synthetic/shapes.ts';
import type { ProcessMemory } from './pages/scale.ts';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium.ts';
import { ensureGguf } from './export-gguf.ts';
import { PEER_ONNX_FILE } from '../models/export/optimum.ts';

export interface ScaleOptions {
  origin: string;
  /** Comma-separated shape ids (models/synthetic/shapes.ts); default smollm2-135m. */
  shapes?: string | undefined;
  rounds?: number | undefined;
  /** Smoke test: one round, 16 new tokens, one thread count. */
  quick?: boolean | undefined;
  /** Comma-separated WASM thread counts; default 1,2. */
  threads?: string | undefined;
  /** Per page, seconds. */
  pageTimeoutS?: number | undefined;
  /** Comma-separated Whittle weights settings to run (f32,q8,q4); default all three. */
  weights?: string | undefined;
  /** Comma-separated peers to run beside Whittle (transformersjs,wllama), or 'none'; default both. */
  peers?: string | undefined;
  /** Whittle's backend: 'wasm' (default) or 'webgpu' (then no peers: here WebGPU is SwiftShader, a CPU emulation, so only whether it loads and runs means anything). */
  backend?: 'wasm' | 'webgpu' | undefined;
  log: (line: string) => void;
}

type Weights = 'f32' | 'q8' | 'q4';
interface Contender {
  contender: 'whittle' | 'transformersjs' | 'wllama';
  shape: string;
  weights: Weights;
  threads: number;
}

/** What one page reports (bench/pages/scale.ts's result), plus the runner's context. */
interface PageResult {
  contender: string;
  weights: Weights;
  threads: number;
  bytes_downloaded: number;
  bytes_cached: number;
  load_ms: number;
  load_cached_ms: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  ttft_ms: number;
  memory: {
    start: ProcessMemory | null;
    first_load: ProcessMemory | null;
    cached_load_and_generation: ProcessMemory | null;
    ua_specific_mb: number | null;
  };
  tokens: number[];
  /** wllama: llama.cpp's own timings and the page-side ones of the same call. */
  timing_detail?: Record<string, number | null>;
  round: number;
  load_avg_1m: number;
}

const WEIGHTS: Weights[] = ['f32', 'q8', 'q4'];
/** The GGUF block format wllama runs for each of Whittle's weight settings (same bits, llama.cpp's layout). */
const GGUF_OF: Record<Weights, 'F32' | 'Q8_0' | 'Q4_0'> = { f32: 'F32', q8: 'Q8_0', q4: 'Q4_0' };
const PROMPT_TOKENS = 128;

/**
 * wllama's prompt: its completion API takes text, so the same number of tokens as the other
 * contenders' 128 ids, as text: words that each are one token of the vocabulary with their
 * leading space (byte-level 'Ġword'), which every byte-level pre-tokenizer here keeps as one
 * piece; one fewer when the tokenizer adds BOS itself. The page checks llama.cpp's count.
 */
function wllamaPromptText(folder: string): string {
  const tok = JSON.parse(readFileSync(join(folder, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number> };
    post_processor?: { single?: { SpecialToken?: unknown }[] } | null;
  };
  const addsBos = tok.post_processor?.single?.[0]?.SpecialToken !== undefined;
  const words = Object.entries(tok.model.vocab)
    .filter(([t]) => /^\u0120[a-z]{3,10}$/.test(t))
    .sort((a, b) => a[1] - b[1])
    .map(([t]) => t.slice(1));
  if (words.length < PROMPT_TOKENS) throw new Error(`${folder}: only ${words.length} one-token words for wllama's prompt`);
  const n = PROMPT_TOKENS - (addsBos ? 1 : 0);
  return Array.from({ length: n }, (_, i) => ` ${words[(i * 7919 + 104729) % words.length]}`).join('');
}

/** public/models/synthetic-<shape>/: generated once (deterministic: seed 0, bf16, the generator's default shards). */
function ensureSyntheticFolder(shape: string, log: (l: string) => void): string {
  if (!isShapeId(shape)) throw new Error(`unknown shape ${shape}; known: ${Object.keys(SHAPES).join(', ')}`);
  const id = `synthetic-${shape}`;
  const dir = join(REPO_ROOT, 'public/models', id);
  // config.json is written after the weights (folder.ts), so its presence means a complete folder.
  if (!existsSync(join(dir, 'config.json'))) {
    log(`generating ${dir} (synthetic ${shape}, seed 0, bf16)`);
    writeSyntheticFolder(publishedShape(shape), dir, { seed: 0 });
  }
  return id;
}

/**
 * Why the optimum-style export (models/export/optimum.ts) cannot stand for this shape, or null
 * when it can: it writes plain Llama (head size dim/heads, no biases, no rope_scaling).
 */
function peerUnsupported(config: Record<string, unknown>): string | null {
  const dim = config.hidden_size as number;
  const heads = config.num_attention_heads as number;
  if (config.rope_scaling) return 'the optimum-style export has no rope_scaling (llama3): its logits would differ from the model';
  if (config.model_type === 'qwen2' || config.attention_bias === true) return 'the optimum-style export has no q/k/v biases';
  if (typeof config.head_dim === 'number' && config.head_dim !== dim / heads)
    return 'the optimum-style export assumes head_dim = hidden_size / heads';
  return null;
}

/** bench/out/transformersjs/<id>/: exported again when missing or older than the synthetic weights. */
function ensurePeerExport(id: string, log: (l: string) => void): void {
  const src = join(REPO_ROOT, 'public/models', id);
  const newestSource = Math.max(...readdirSync(src).map((f) => statSync(join(src, f)).mtimeMs));
  const fresh = (file: string) => {
    const onnx = join(REPO_ROOT, 'bench/out/transformersjs', id, 'onnx', file);
    return existsSync(onnx) && statSync(onnx).mtimeMs >= newestSource;
  };
  if (Object.values(PEER_ONNX_FILE).every(fresh)) return;
  log(`exporting the transformers.js peer of ${id} (f32, q8, q4)`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench/export-peer.ts'), '--model', id, '--quantized'], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) throw new Error(`bench/export-peer.ts --model ${id} failed (${r.status ?? r.signal})`);
}

/** Every process below this one (the browser, its zygotes, renderers, GPU and utility processes). */
function descendants(root: number): Map<number, string> {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      // The command name may hold spaces and parentheses: ppid is the second field after the last ')'.
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      // The process ended while being listed.
    }
  }
  const out = new Map<number, string>();
  const stack = [root];
  while (stack.length > 0) {
    for (const child of children.get(stack.pop()!) ?? []) {
      try {
        out.set(child, readFileSync(`/proc/${child}/cmdline`, 'utf8'));
      } catch {
        continue;
      }
      stack.push(child);
    }
  }
  return out;
}

const rendererPids = () => new Set([...descendants(process.pid)].filter(([, cmd]) => cmd.includes('--type=renderer')).map(([pid]) => pid));

/** VmHWM / VmRSS in MiB; null when the process is gone. */
function memoryOf(pid: number): { hwm: number; rss: number } | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { hwm: kb('VmHWM') / 1024, rss: kb('VmRSS') / 1024 };
  } catch {
    return null;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0), so the next reading is the peak since now. */
function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // The process ended; nothing to reset.
  }
}

/**
 * A fresh Chromium with a fresh on-disk profile per page: empty OPFS / Cache Storage / IndexedDB
 * (the first load downloads), storage on disk as a user's is (an off-the-record context keeps it in
 * memory, and refused transformers.js's 650 MB Cache Storage put), and one renderer, so /proc reads
 * this page only. The same executable and flags as bench/run.ts's browser.
 */
async function launchFresh(): Promise<{ context: BrowserContext; close: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'whittle-scale-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function runPage(
  c: Contender,
  vocab: number,
  newTokens: number,
  opts: ScaleOptions,
  promptText: string,
): Promise<Omit<PageResult, 'round' | 'load_avg_1m'>> {
  const before = rendererPids();
  const { context, close } = await launchFresh();
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    const label = `${c.contender}:${c.weights}:${c.threads}t`;
    page.on('console', (msg) => {
      const text = msg.text();
      if (!/not assigned to the preferred execution providers|VerifyEachNodeIsAssignedToAnEp/.test(text)) opts.log(`[${label}] ${text}`);
    });
    page.on('pageerror', (err) => opts.log(`[${label}] page error: ${err.message}`));
    await page.exposeFunction('scaleMark', (mark: string): ProcessMemory | null => {
      const pids = [...rendererPids()].filter((p) => !before.has(p));
      const readings = pids.map((p) => memoryOf(p)).filter((m): m is { hwm: number; rss: number } => m !== null);
      for (const p of pids) resetPeak(p);
      if (mark === 'start' || readings.length === 0)
        return readings.length === 0 ? null : { peak_mb: 0, rss_mb: Math.round(Math.max(...readings.map((r) => r.rss))) };
      // The largest new renderer is the page's (another new one would be a spare, tens of MiB).
      return { peak_mb: Math.round(Math.max(...readings.map((r) => r.hwm))), rss_mb: Math.round(Math.max(...readings.map((r) => r.rss))) };
    });
    const q = new URLSearchParams({
      contender: c.contender,
      model: `synthetic-${c.shape}`,
      weights: c.weights,
      threads: String(c.threads),
      prompt: '128',
      new: String(newTokens),
      vocab: String(vocab),
      ...(c.contender === 'wllama' ? { text: promptText } : {}),
      ...(c.contender === 'whittle' && opts.backend === 'webgpu' ? { backend: 'webgpu' } : {}),
    });
    await page.goto(`${opts.origin}/bench/pages/scale.html?${q}`);
    await page.waitForFunction(() => (window as unknown as { benchDone?: unknown }).benchDone !== undefined, undefined, {
      timeout: (opts.pageTimeoutS ?? 1200) * 1000,
      polling: 500,
    });
    const done = (await page.evaluate(() => (window as unknown as { benchDone: { result?: unknown; error?: string } }).benchDone)) as {
      result?: PageResult;
      error?: string;
    };
    if (done.error || !done.result) throw new Error(`${label}: ${done.error ?? 'no result'}`);
    return done.result;
  } finally {
    await close();
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
/** Median and [min, max] of a figure over the rounds. */
const spread = (xs: number[]) => ({
  median: r2(median(xs)),
  range: [r2(Math.min(...xs)), r2(Math.max(...xs))] as [number, number],
  per_round: xs.map(r2),
});
const peakOf = (r: PageResult) => Math.max(r.memory.first_load?.peak_mb ?? NaN, r.memory.cached_load_and_generation?.peak_mb ?? NaN);
/** How many leading tokens two greedy generations share (random weights leave near-ties, so fp32 op order can flip one). */
const commonPrefix = (a: number[], b: number[]) => {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
};

function summarize(pages: PageResult[]) {
  const figure = (key: 'load_ms' | 'load_cached_ms' | 'decode_tok_s' | 'prefill_tok_s' | 'ttft_ms') => spread(pages.map((p) => p[key]));
  const first = pages[0]!;
  return {
    bytes: { downloaded: first.bytes_downloaded, cached: first.bytes_cached },
    load_ms: figure('load_ms'),
    load_cached_ms: figure('load_cached_ms'),
    // Issue #13's goal for compressed variants: the cached load at least 3x faster than the first.
    load_cached_speedup: spread(pages.map((p) => p.load_ms / p.load_cached_ms)),
    rss_empty_page_mb: spread(pages.map((p) => p.memory.start?.rss_mb ?? NaN)),
    peak_mb: spread(pages.map(peakOf)),
    peak_first_load_mb: spread(pages.map((p) => p.memory.first_load?.peak_mb ?? NaN)),
    peak_cached_load_and_generation_mb: spread(pages.map((p) => p.memory.cached_load_and_generation?.peak_mb ?? NaN)),
    ua_specific_memory_mb: spread(pages.map((p) => p.memory.ua_specific_mb ?? NaN)),
    decode_tok_s: figure('decode_tok_s'),
    prefill_tok_s: figure('prefill_tok_s'),
    ttft_ms: figure('ttft_ms'),
  };
}

export async function runScale(browser: Browser, opts: ScaleOptions) {
  const shapes = (opts.shapes ?? 'smollm2-135m').split(',').filter(Boolean);
  const rounds = opts.quick ? 1 : Math.max(3, opts.rounds ?? 3);
  const newTokens = opts.quick ? 16 : 128;
  const threadCounts = opts.quick ? [1] : opts.threads ? opts.threads.split(',').map(Number) : [1, 2];
  const loadStart = loadavg();

  const peerWhy = new Map<string, string | null>();
  const wllamaWhy = new Map<string, string | null>();
  const promptTextOf = new Map<string, string>();
  const vocabOf = new Map<string, number>();
  const weightsList = (opts.weights?.split(',').filter(Boolean) ?? WEIGHTS) as Weights[];
  for (const w of weightsList) if (!WEIGHTS.includes(w)) throw new Error(`--weights: unknown setting ${w} (f32, q8, q4)`);
  const peersWanted = new Set(opts.backend === 'webgpu' ? [] : opts.peers === undefined ? ['transformersjs', 'wllama'] : opts.peers.split(',').filter((p) => p !== 'none'));
  for (const shape of shapes) {
    const id = ensureSyntheticFolder(shape, opts.log);
    const folder = join(REPO_ROOT, 'public/models', id);
    const config = JSON.parse(readFileSync(join(folder, 'config.json'), 'utf8')) as Record<string, unknown>;
    vocabOf.set(shape, config.vocab_size as number);
    const why = peersWanted.has('transformersjs') ? peerUnsupported(config) : 'not requested (--peers)';
    peerWhy.set(shape, why);
    if (!why) ensurePeerExport(id, opts.log);
    if (!peersWanted.has('wllama')) wllamaWhy.set(shape, 'not requested (--peers)');
    else
      try {
        ensureGguf(id, Object.values(GGUF_OF), opts.log);
        promptTextOf.set(shape, wllamaPromptText(folder));
        wllamaWhy.set(shape, null);
      } catch (err) {
        // The exporter refuses what llama.cpp would compute differently (e.g. an unknown pre-tokenizer): no wllama rows then.
        wllamaWhy.set(shape, `GGUF export: ${err instanceof Error ? err.message : String(err)}`);
      }
  }

  const contenders: Contender[] = [];
  for (const shape of shapes) {
    for (const threads of threadCounts) {
      for (const weights of weightsList) contenders.push({ contender: 'whittle', shape, weights, threads });
      if (!peerWhy.get(shape)) for (const weights of weightsList) contenders.push({ contender: 'transformersjs', shape, weights, threads });
      if (!wllamaWhy.get(shape)) for (const weights of weightsList) contenders.push({ contender: 'wllama', shape, weights, threads });
    }
  }

  const results: (PageResult & { shape: string })[] = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate the order so a drift in machine load over a round does not favour one side.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const c of order) {
      const load = loadavg()[0]!;
      opts.log(`round ${round + 1}/${rounds}: ${c.shape} ${c.contender} ${c.weights} ${c.threads}t (load average ${load.toFixed(2)})`);
      try {
        const r = await runPage(c, vocabOf.get(c.shape)!, newTokens, opts, promptTextOf.get(c.shape) ?? '');
        results.push({ ...r, shape: c.shape, round, load_avg_1m: r2(load) });
      } catch (err) {
        // A peer that fails on a shape (wllama on an untested one) costs its rows, not the benchmark.
        if (c.contender !== 'wllama') throw err;
        const why = `wllama ${c.weights} ${c.threads}t, round ${round + 1}: ${err instanceof Error ? err.message : String(err)}`;
        opts.log(why);
        wllamaWhy.set(c.shape, why);
      }
    }
  }

  const runs = [];
  for (const shape of shapes) {
    for (const threads of threadCounts) {
      const of = (contender: string, weights: Weights) =>
        results.filter((r) => r.shape === shape && r.threads === threads && r.contender === contender && r.weights === weights);
      for (const weights of weightsList) {
        // transformers.js at the same quantization (its own q8 / q4 dtypes) when it ran, else its f32.
        const samePeer = of('transformersjs', weights);
        const peerPages = samePeer.length > 0 ? samePeer : of('transformersjs', 'f32');
        const peerWeights = samePeer.length > 0 ? weights : 'f32';
        const peer = peerPages.length > 0 ? summarize(peerPages) : null;
        const mine = of('whittle', weights);
        const s = summarize(mine);
        // Per-round ratios: both pages of a round ran minutes apart under the same machine state.
        const ratioTo =
          (pages: PageResult[]) =>
          (key: 'decode_tok_s' | 'prefill_tok_s' | 'load_ms' | 'load_cached_ms', invert = false) =>
            spread(
              mine.map((m) => {
                const p = pages.find((x) => x.round === m.round)!;
                return invert ? p[key] / m[key] : m[key] / p[key];
              }),
            );
        const ratio = ratioTo(peerPages);
        // wllama on the GGUF of the same bits; its pages only count when every round has one.
        const wllamaPages = wllamaWhy.get(shape) ? [] : of('wllama', weights);
        const wl = wllamaPages.length === rounds ? summarize(wllamaPages) : null;
        const wlRatio = ratioTo(wllamaPages);
        runs.push({
          model: shape,
          synthetic: true,
          weights,
          backend: opts.backend ?? 'wasm',
          threads,
          bytes: s.bytes.downloaded,
          bytes_cached: s.bytes.cached,
          load_ms: s.load_ms.median,
          load_cached_ms: s.load_cached_ms.median,
          peak_mb: s.peak_mb.median,
          decode_tok_s: s.decode_tok_s.median,
          prefill_tok_s: s.prefill_tok_s.median,
          detail: s,
          peers: {
            transformersjs: peer
              ? {
                  weights: peerWeights,
                  same_quantization: peerWeights === weights,
                  bytes: peer.bytes.downloaded,
                  bytes_cached: peer.bytes.cached,
                  load_ms: peer.load_ms.median,
                  load_cached_ms: peer.load_cached_ms.median,
                  peak_mb: peer.peak_mb.median,
                  decode_tok_s: peer.decode_tok_s.median,
                  prefill_tok_s: peer.prefill_tok_s.median,
                  detail: peer,
                  // Whittle / transformers.js for speed; transformers.js / Whittle for load times (above 1 = Whittle faster).
                  ratio_decode: ratio('decode_tok_s'),
                  ratio_prefill: ratio('prefill_tok_s'),
                  ratio_load: ratio('load_ms', true),
                  ratio_load_cached: ratio('load_cached_ms', true),
                  ...(weights === 'f32'
                    ? { tokens_common_prefix: mine.map((m) => commonPrefix(m.tokens, peerPages.find((x) => x.round === m.round)!.tokens)) }
                    : {}),
                }
              : null,
            ...(peer ? {} : { transformersjs_why: peerWhy.get(shape) }),
            wllama: wl
              ? {
                  version: '3.13.0 (llama.cpp in WASM)',
                  weights: GGUF_OF[weights],
                  // Same bits per weight; the same format only for f32 (Q8_0/Q4_0: symmetric blocks of 32, fp16 scales, Q8 activations; Whittle: per-channel / asymmetric groups).
                  same_quantization: weights === 'f32',
                  bytes: wl.bytes.downloaded,
                  bytes_cached: wl.bytes.cached,
                  load_ms: wl.load_ms.median,
                  load_cached_ms: wl.load_cached_ms.median,
                  peak_mb: wl.peak_mb.median,
                  decode_tok_s: wl.decode_tok_s.median,
                  prefill_tok_s: wl.prefill_tok_s.median,
                  detail: { ...wl, timing: wllamaPages.map((p) => p.timing_detail ?? null) },
                  // Whittle / wllama for speed; wllama / Whittle for load times (above 1 = Whittle faster).
                  ratio_decode: wlRatio('decode_tok_s'),
                  ratio_prefill: wlRatio('prefill_tok_s'),
                  ratio_load: wlRatio('load_ms', true),
                  ratio_load_cached: wlRatio('load_cached_ms', true),
                }
              : null,
            ...(wl ? {} : { wllama_why: wllamaWhy.get(shape) ?? 'wllama did not complete every round' }),
          },
        });
      }
    }
  }

  // The goal per weights setting and thread count this run measured against transformers.js.
  const goalRows = runs
    .filter((r) => r.model === 'smollm2-135m' && r.peers.transformersjs?.ratio_decode)
    .map((r) => ({ weights: r.weights, threads: r.threads, ratio_decode: r.peers.transformersjs!.ratio_decode, met: r.peers.transformersjs!.ratio_decode.median >= 1.5 }));
  return {
    benchmark: 'scale',
    date: new Date().toISOString(),
    chromium: browser.version(),
    machine: { cores: cpus().length, load_avg_start: loadStart.map(r2), load_avg_end: loadavg().map(r2) },
    synthetic: true,
    prompt_tokens: 128,
    new_tokens: newTokens,
    warm_up: 'one generation of the same prompt with 8 new tokens after the cached load, on both sides',
    rounds,
    methods: {
      prefill_tok_s:
        'prompt tokens / time to first token, timed inside each worker (Whittle: stats.timeToFirstTokenMs; transformers.js: generate() call to the first streamed token)',
      decode_tok_s: '(new tokens - 1) / time from the first to the last generated token, inside each worker',
      load_ms:
        'first load in a fresh browser profile, timed on the page: download into the cache + parse + compile (+ compression for q8/q4)',
      load_cached_ms:
        'second load in the same page, new worker, from the contender\u2019s own cache (Whittle: OPFS store; transformers.js: Cache Storage)',
      peak_mb:
        'peak resident set (VmHWM from /proc) of the page\u2019s renderer process, which holds the page, its workers, their JS heaps and WASM heaps; max of the first load and of (cached load + generation), the peak being reset between them; includes the empty page (~100 MiB)',
      ua_specific_memory_mb:
        'performance.measureUserAgentSpecificMemory() after the measured generation (page + workers, as Chromium attributes it), with a 30 s limit; null when it did not answer',
      wasm_heap: 'not read separately: Whittle\u2019s worker exposes no onnxruntime heap size; it is inside peak_mb',
      wllama:
        'wllama 3.13 on GGUF files of the same weights (models/export/gguf.ts; f32 -> F32, q8 -> Q8_0, q4 -> Q4_0 with a Q8_0 head): loaded by URL into its own OPFS cache, then by a new instance from it; its prompt is 128 one-token words as text (its API takes text), checked against llama.cpp\u2019s count; prefill and decode from llama.cpp\u2019s own timings inside its worker (prompt_ms; predicted_ms spans the tokens after the first), page-side times in detail.timing',
    },
    goal: {
      text: 'SmolLM2-135M shape, WASM: decode at least 1.5x transformers.js at the same quantization (median of the per-round ratios)',
      rows: goalRows,
    },
    runs,
    pages: results.map(({ tokens: _t, ...rest }) => rest),
    quality: null,
    quality_why: 'perplexity is measured on the trained models (models/compress/README.md); synthetic weights have no quality to measure',
  };
}
