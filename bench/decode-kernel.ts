/**
 * `npx tsx bench/decode-kernel.ts [--shape smollm2-135m] [--weights q8|q4|f32] [--threads 1|2] [--steps 64] [--json]`:
 * a WASM decode step on Whittle's own kernels (workers/text/kernel-decoder.ts) against the
 * same step on onnxruntime-web's graphs (DynamicQuantizeMatMul; MatMul at f32, where the
 * kernels keep the bf16 checkpoint's values as bf16), same prepared weights, one
 * Node process (`--threads 2`: onnxruntime's graphs on two threads; the kernels use one).
 * Both runners prefill the same 128-token prompt, then take turns
 * decoding the same tokens, so both see the same machine; wall time per step (the kernels run
 * on this thread, onnxruntime's WASM on this thread too). Synthetic weights from
 * `public/models/synthetic-<shape>` (models/synthetic/generate.ts). The last line is JSON.
 */
import { openAsBlob, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../models/local.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { openTextModelFromHf } from '../workers/text/model.ts';
import { prepareWeightsFrom } from '../models/llama/prepare.ts';
import { PlanRunner } from '../workers/text/runner.ts';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'smollm2-135m' },
    weights: { type: 'string', default: 'q8' },
    steps: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
    threads: { type: 'string', default: '1' },
  },
});
const linear = args.weights === 'q4' ? 'q4' : args.weights === 'f32' ? 'f32' : 'q8';
const steps = Number(args.steps);
const threads = Number(args.threads);
const ort = await loadOrt({ backend: 'wasm', numThreads: threads });
const dir = join(REPO_ROOT, 'public', 'models', `synthetic-${args.shape}`);
const files = Object.fromEntries(
  await Promise.all(
    readdirSync(dir)
      .filter((n) => /\.(json|safetensors)$/.test(n))
      .map(async (n) => [n, await openAsBlob(join(dir, n))] as const),
  ),
);
const model = await openTextModelFromHf(files);
const prepared = await prepareWeightsFrom(model.config, model.weights, {
  weights: { linear, ...(linear === 'q4' ? { kernel: 'int8' as const } : {}) },
});
const plan = { layers: Array.from({ length: model.config.nLayers }, (_, i) => i) };
const kernel = await PlanRunner.compile(ort, 'wasm', prepared, plan, 'onnx', undefined, { decodeKernel: 'kernel' });
const graphs = await PlanRunner.compile(ort, 'wasm', prepared, plan, 'onnx', undefined, { decodeKernel: 'onnxruntime' });
const prompt = Array.from({ length: 128 }, (_, i) => 100 + ((i * 7919) % 5000));
await kernel.step(prompt);
await graphs.step(prompt);
const times = { kernel: [] as number[], onnxruntime: [] as number[] };
for (let i = 0; i < steps; i++) {
  const token = 200 + ((i * 104729) % 20000);
  for (const [name, r] of [
    ['kernel', kernel],
    ['onnxruntime', graphs],
  ] as const) {
    const t0 = performance.now();
    await r.step([token]);
    times[name].push(performance.now() - t0);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const range = (a: number[]) => [Math.min(...a), Math.max(...a)].map((v) => Math.round(v * 100) / 100);
const result = {
  benchmark: 'decode-kernel',
  date: new Date().toISOString(),
  synthetic: true,
  shape: args.shape,
  weights: linear,
  backend: 'wasm',
  threads,
  context: `128 prompt tokens + ${steps} decode steps`,
  kernel_ms: { median: Math.round(median(times.kernel) * 100) / 100, range: range(times.kernel) },
  onnxruntime_ms: { median: Math.round(median(times.onnxruntime) * 100) / 100, range: range(times.onnxruntime) },
  speedup: Math.round((median(times.onnxruntime) / median(times.kernel)) * 100) / 100,
  kernel_bytes: kernel.kernelBytes,
};
if (!args.json)
  console.log(`kernel ${result.kernel_ms.median} ms/step, onnxruntime ${result.onnxruntime_ms.median} ms/step: ${result.speedup}x`);
console.log(JSON.stringify(result));
await Promise.all([kernel.release(), graphs.release()]);
