/**
 * `npm run bench:memory -- [--shapes smollm2-135m,qwen2.5-0.5b] [--weights f32,q8] [--json]`:
 * what loading a model costs in memory, in Node (onnxruntime-web's WASM build, 1 thread), one
 * fresh child process per (shape, weights) so each peak is its own:
 * - peak_rss_mb: the process's high-water resident set (VmHWM), i.e. the load's peak;
 * - wasm_heap_mb: onnxruntime's WASM memory after the load (it only grows: its peak);
 * - array_buffers_mb: ArrayBuffers alive after the load and a GC (what JS still holds);
 * - weights_mb: the weights as the sessions hold them (fp32: 4 bytes a parameter);
 * plus load time and a short greedy decode. Weights are synthetic (models/synthetic/, published
 * shapes, generated into public/models/synthetic-<shape>/ when missing): memory and load only.
 * The folder is opened the way the CLI opens one (Blobs from `fs.openAsBlob`, streamed layer by
 * layer). On Node 20 the children run with ArrayBuffer.prototype.transfer turned on, as Chromium
 * has it, so load-time temporaries are released as they are in a tab (core/release.ts). Chromium's numbers (the renderer's RSS) are in `npm run bench:scale`.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, openAsBlob, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../models/local.ts';
import { TRANSFER_FLAG } from '../scripts/node-transfer-flag.ts';
import { writeSyntheticFolder } from '../models/synthetic/folder.ts';
import { isShapeId, publishedShape, SHAPES } from '../models/synthetic/shapes.ts';
import { watchWasmHeap, wasmHeapBytes } from '../workers/ort/heap.ts';

const { values } = parseArgs({
  options: { shapes: { type: 'string', default: 'smollm2-135m' }, weights: { type: 'string', default: 'f32,q8' }, json: { type: 'boolean', default: false }, child: { type: 'string' }, 'max-tokens': { type: 'string', default: '8' } },
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
  const [shape, weights] = spec.split(':') as [string, string];
  watchWasmHeap();
  const { loadOrt } = await import('../workers/ort/runtime.ts');
  const { TextEngine } = await import('../workers/text/engine.ts');
  const { openTextModelFromHf } = await import('../workers/text/model.ts');
  const dir = join(REPO_ROOT, 'public', 'models', `synthetic-${shape}`);
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const files = Object.fromEntries(await Promise.all(readdirSync(dir).filter((n) => /\.(json|safetensors)$/.test(n)).map(async (n) => [n, await openAsBlob(join(dir, n))] as const)));
  const t0 = performance.now();
  const model = await openTextModelFromHf(files);
  const engine = await TextEngine.create(ort, 'wasm', model, weights === 'f32' ? {} : { compress: { linear: weights as 'q8' | 'q4' } });
  const loadMs = performance.now() - t0;
  const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);
  let n = 0;
  let first = 0;
  for await (const ev of engine.generate(prompt, { maxTokens: Number(values['max-tokens']), greedy: true, addBos: false })) {
    if (ev.type === 'token' && ++n === 1) first = performance.now();
  }
  const decodeS = (performance.now() - first) / 1000;
  // ArrayBuffer backing stores are freed by GC tasks after the collection: collect, yield, collect.
  const gc = (globalThis as { gc?: () => void }).gc;
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 200));
  }
  const held = engine.heldWeightBytes;
  const status = readFileSync('/proc/self/status', 'utf8');
  const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  const c = model.config;
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
    decode_tok_s: +((n - 1) / decodeS).toFixed(2),
    held_weights_mb: Math.round(held / MB),
  };
  console.log(JSON.stringify(row));
  await engine.dispose();
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
      const r = spawnSync(process.execPath, ['--expose-gc', ...TRANSFER_FLAG, '--import', 'tsx', 'bench/load-memory.ts', '--child', `${shape}:${weights}`, '--max-tokens', values['max-tokens']], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 1 << 24 });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (r.status !== 0 || !line.startsWith('{')) {
        console.error(`[memory] ${shape} ${weights} failed (exit ${r.status}): ${r.stderr.slice(-2000)}`);
        continue;
      }
      const row = JSON.parse(line) as Row;
      console.error(`[memory] ${shape} ${weights}: peak RSS ${row.peak_rss_mb} MB, WASM heap ${row.wasm_heap_mb} MB, JS ArrayBuffers ${row.array_buffers_mb} MB, load ${row.load_ms} ms, decode ${row.decode_tok_s} tok/s`);
      rows.push(row);
    }
  }
  console.log(values.json ? JSON.stringify({ runs: rows }) : JSON.stringify({ runs: rows }, null, 2));
}
