/**
 * `npm run bench:memory -- [--shapes smollm2-135m,qwen2.5-0.5b] [--weights f32,q8] [--json]`:
 * what loading a model costs in memory, in Node (onnxruntime-web's WASM build, 1 thread), one
 * fresh child process per (shape, weights) so each peak is its own:
 * - peak_rss_mb: the process's high-water resident set (VmHWM), i.e. the load's peak;
 * - wasm_heap_mb: onnxruntime's WASM memory after the load (it only grows: its peak);
 * - array_buffers_mb: ArrayBuffers alive after the load and a GC (what JS still holds);
 * - weights_mb: the weights as the sessions hold them (fp32: 4 bytes a parameter);
 * plus load time and a short greedy decode. `--variant DIR` (one shape and weights) loads that
 * compressed variant folder (`whittle compress`) instead, through the worker's service, as a page
 * loads a cached variant from its store; `--first-load` loads the source the way the SDK's first
 * load with compress does (the variant streamed out a block at a time and written, then loaded
 * from the file), `--first-load-kept` the whole-model way sparsity and AWQ still take (keepVariant,
 * then the variant exported as a page would store it). Weights are synthetic (models/synthetic/, published
 * shapes, generated into public/models/synthetic-<shape>/ when missing): memory and load only.
 * The folder is opened the way the CLI opens one (Blobs from `fs.openAsBlob`, streamed layer by
 * layer). On Node 20 the children run with ArrayBuffer.prototype.transfer turned on, as Chromium
 * has it, so load-time temporaries are released as they are in a tab (core/release.ts). Chromium's numbers (the renderer's RSS) are in `npm run bench:scale`.
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, openAsBlob, readFileSync, readdirSync, rmSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../models/local.ts';
import { TRANSFER_FLAG } from '../scripts/node-transfer-flag.ts';
import { writeSyntheticFolder } from '../models/synthetic/folder.ts';
import { isShapeId, publishedShape, SHAPES } from '../models/synthetic/shapes.ts';
import { watchWasmHeap, wasmHeapBytes } from '../workers/ort/heap.ts';
import type { LlamaConfig } from '../models/llama/types.ts';

const { values } = parseArgs({
  options: { shapes: { type: 'string', default: 'smollm2-135m' }, weights: { type: 'string', default: 'f32,q8' }, json: { type: 'boolean', default: false }, child: { type: 'string' }, variant: { type: 'string' }, 'first-load': { type: 'boolean', default: false }, 'first-load-kept': { type: 'boolean', default: false }, 'max-tokens': { type: 'string', default: '8' } },
});
const MB = 2 ** 20;

interface Row {
  shape: string;
  synthetic: true;
  weights: string;
  params_m: number;
  weights_mb: number;
  load_ms: number;
  peak_rss_mb: number;
  wasm_heap_mb: number | null;
  array_buffers_mb: number;
  decode_tok_s: number;
  /** Prepared weights the engine keeps in JS beside the sessions (compressed models; 0 for a streamed fp32 one). */
  held_weights_mb: number;
}

/** One measurement, in this (fresh) process: prints its row as JSON. */
async function child(spec: string): Promise<void> {
  // `shape:weights`: the synthetic source folder, compressed on the fly (the engine, streamed).
  // `shape:weights:first-load`: the SDK's first load with compress, which also makes the variant
  // to cache (keepVariant, then exportVariant: the parts a page writes to its store).
  // `shape:weights:<dir>`: a compressed variant folder (`whittle compress`), as a page loads the
  // store's cached variant. The last two through the worker's own service.
  const [shape, weights, third] = spec.split(':') as [string, string, string | undefined];
  const firstLoad = third === 'first-load' || third === 'first-load-kept';
  let cleanup = () => {};
  const variantDir = firstLoad ? undefined : third;
  watchWasmHeap();
  const { loadOrt } = await import('../workers/ort/runtime.ts');
  const { TextEngine } = await import('../workers/text/engine.ts');
  const { TextService } = await import('../workers/text/service.ts');
  const { openTextModelFromHf } = await import('../workers/text/model.ts');
  const dir = variantDir ?? join(REPO_ROOT, 'public', 'models', `synthetic-${shape}`);
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const files = Object.fromEntries(await Promise.all(readdirSync(dir).filter((n) => /\.(json|safetensors)$/.test(n)).map(async (n) => [n, await openAsBlob(join(dir, n))] as const)));
  const maxTokens = Number(values['max-tokens']);
  const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);
  const t0 = performance.now();
  let config: LlamaConfig;
  /** Greedy decode tok/s after `prompt`. */
  let decode: () => Promise<number>;
  let heldBytes: () => number;
  let dispose: () => Promise<void>;
  if (variantDir || firstLoad) {
    const service = new TextService();
    await service.init({ backend: 'wasm', numThreads: 1 });
    const setting = { linear: weights as 'q8' | 'q4' };
    if (firstLoad && third === 'first-load-kept') {
      // The whole-model way (still the one for sparsity and AWQ): compress in the loading
      // worker, keep the stored form, export the parts a page would write to its store.
      await service.load({ format: 'hf', files }, { compress: setting, keepVariant: true });
      service.exportVariant({ id: shape, revision: 'bench' });
    } else if (firstLoad) {
      // The SDK's way (sdk/text-variant.ts saveStreamedVariant): a service of its own streams the
      // variant out a block at a time, written to disk as it comes (a page writes it to its
      // store), then the variant loads as a cached one does. One process holds both, as a tab does.
      const producer = new TextService();
      await producer.openVariantStream({ format: 'hf', files }, setting, { id: shape, revision: 'bench' }, 'wasm');
      const { VARIANT_FILE } = await import('../models/compress/variant-name.ts');
      const out = join(tmpdir(), `whittle-first-load-${process.pid}`);
      mkdirSync(out, { recursive: true });
      const stream = createWriteStream(join(out, VARIANT_FILE));
      for (let c = await producer.nextVariantChunk(); c; c = await producer.nextVariantChunk()) if (!stream.write(c)) await once(stream, 'drain');
      stream.end();
      await once(stream, 'finish');
      const kept = Object.fromEntries(Object.entries(files).filter(([n]) => n.endsWith('.json') && !n.endsWith('.index.json')));
      await service.load({ format: 'variant', files: { ...kept, [VARIANT_FILE]: await openAsBlob(join(out, VARIANT_FILE)) } });
      cleanup = () => rmSync(out, { recursive: true, force: true });
    } else await service.load({ format: 'variant', files });
    const { llamaConfigFromHf } = await import('../models/import/hf/config.ts');
    config = llamaConfigFromHf(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')));
    // complete() gives the tokens at once: the worker's own decode timing.
    decode = async () => (await service.complete(prompt, { maxTokens, greedy: true, addBos: false })).stats.decodeTokensPerSecond;
    heldBytes = () => service.describe().memory.heldWeightBytes;
    dispose = () => service.dispose();
  } else {
    const model = await openTextModelFromHf(files);
    const engine = await TextEngine.create(ort, 'wasm', model, weights === 'f32' ? {} : { compress: { linear: weights as 'q8' | 'q4' } });
    config = model.config;
    decode = async () => {
      let n = 0;
      let first = 0;
      for await (const ev of engine.generate(prompt, { maxTokens, greedy: true, addBos: false })) if (ev.type === 'token' && ++n === 1) first = performance.now();
      return (n - 1) / ((performance.now() - first) / 1000);
    };
    heldBytes = () => engine.heldWeightBytes;
    dispose = () => engine.dispose();
  }
  const loadMs = performance.now() - t0;
  const decodeTokS = await decode();
  // ArrayBuffer backing stores are freed by GC tasks after the collection: collect, yield, collect.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  const held = heldBytes();
  const status = readFileSync('/proc/self/status', 'utf8');
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const c = config;
  const params = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.nLayers * (c.dim * (c.nHeads + 2 * c.nKvHeads) * (c.headDim ?? c.dim / c.nHeads) + c.nHeads * (c.headDim ?? c.dim / c.nHeads) * c.dim + 3 * c.dim * c.hiddenDim);
  const heap = wasmHeapBytes();
  const row: Row = {
    shape,
    synthetic: true,
    weights,
    params_m: Math.round(params / 1e6),
    weights_mb: Math.round((params * 4) / MB),
    load_ms: Math.round(loadMs),
    peak_rss_mb: Math.round(hwmKb / 1024),
    wasm_heap_mb: heap === null ? null : Math.round(heap / MB),
    array_buffers_mb: Math.round(process.memoryUsage().arrayBuffers / MB),
    decode_tok_s: +decodeTokS.toFixed(2),
    held_weights_mb: Math.round(held / MB),
  };
  console.log(JSON.stringify(row));
  await dispose();
  cleanup();
}

if (values.child) {
  await child(values.child);
} else {
  const rows: Row[] = [];
  for (const shape of values.shapes.split(',')) {
    if (!isShapeId(shape)) throw new Error(`unknown shape ${shape}; one of ${Object.keys(SHAPES).join(', ')}`);
    const dir = join(REPO_ROOT, 'public', 'models', `synthetic-${shape}`);
    if (!existsSync(join(dir, 'config.json'))) writeSyntheticFolder(publishedShape(shape), dir, { seed: 0 }); // the seed bench:scale uses
    for (const weights of values.weights.split(',')) {
      const r = spawnSync(process.execPath, ['--expose-gc', ...TRANSFER_FLAG, '--import', 'tsx', 'bench/load-memory.ts', '--child', `${shape}:${weights}${values.variant ? `:${values.variant}` : values['first-load'] ? ':first-load' : values['first-load-kept'] ? ':first-load-kept' : ''}`, '--max-tokens', values['max-tokens']], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !line.startsWith('{')) {
        console.error(`[memory] ${shape} ${weights} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
        continue;
      }
      const row = JSON.parse(line) as Row;
      console.error(`[memory] ${shape} ${weights}${values.variant ? ' (variant)' : values['first-load'] ? ' (first load: variant streamed, then loaded)' : values['first-load-kept'] ? ' (first load, whole-model way)' : ''}: peak RSS ${row.peak_rss_mb} MB, WASM heap ${row.wasm_heap_mb} MB, JS ArrayBuffers ${row.array_buffers_mb} MB, load ${row.load_ms} ms, decode ${row.decode_tok_s} tok/s`);
      rows.push(row);
    }
  }
  console.log(values.json ? JSON.stringify({ runs: rows }) : JSON.stringify({ runs: rows }, null, 2));
}
