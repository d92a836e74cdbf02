/**
 * Node micro-benchmark of the runner (WASM EP): graph nodes per segment, prefill and greedy
 * decode speed per attention kind and per plan shape. Cases are interleaved round by round,
 * because this machine is shared; numbers go into models/llama/README.md.
 *
 *   npx tsx workers/text/bench-node.ts [reps]                      stories260K + the recipe shape, best of reps
 *   npx tsx workers/text/bench-node.ts [reps] --model DIR [--threads N]
 *       a Hugging Face folder (e.g. SmolLM2-135M-shaped synthetic weights from
 *       models/synthetic/generate.ts): decode per attention kind and head form, prefill per chunk
 *       size. Per case the median over rounds of wall ms and of this process's CPU ms, and
 *       the median of per-round speed ratios against the first case of its group: on a loaded
 *       machine CPU time moves far less than wall time (a 1-thread session runs on this thread;
 *       with N threads CPU time sums them all, so read wall time there).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readHfModel } from '../../models/import/hf/model.ts';
import { readLocalModelFile } from '../../models/local.ts';
import type { AttentionKind, SegmentOptions } from '../../models/llama/graph.ts';
import { prepareWeights, type PreparedWeights } from '../../models/llama/prepare.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import { fullPlan, type LlamaPlan } from '../../models/llama/types.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { argmax } from './sampler.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const reps = Number(args.find((a) => /^\d+$/.test(a)) ?? 3);
const modelDir = flag('--model');
const threads = Number(flag('--threads') ?? 1);
const ort = await loadOrt({ backend: 'wasm', numThreads: threads });


/** One timed call: wall and CPU milliseconds. */
async function timed<T>(f: () => Promise<T>): Promise<{ value: T; wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { value, wall, cpu: (c.user + c.system) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.round(q * (xs.length - 1))]!;

if (modelDir) await benchFolder(modelDir);
else await benchSmall();

async function benchFolder(dir: string): Promise<void> {
  const files: Record<string, ArrayBuffer> = {};
  for (const name of readdirSync(dir)) {
    if (!/\.(json|safetensors)$/.test(name) || name.startsWith('tokenizer')) continue;
    const b = readFileSync(join(dir, name));
    files[name] = b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
  }
  const { config, weights } = readHfModel(files, { maxContext: 1024 });
  const prepared = prepareWeights(config, weights);
  const plan = fullPlan(config);
  const promptOf = (n: number) => Array.from({ length: n }, (_, i) => 300 + ((i * 7919) % 20000));
  const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  console.log(JSON.stringify({ model: dir, threads, reps, loadAtStart: load() }));

  // Decode: a 128-token prompt, then 64 greedy steps (positions 128..191).
  const decodeCases: { name: string; attention: AttentionKind; options: SegmentOptions }[] = [
    { name: "'onnx', head = MatMul on the transposed copy (default)", attention: 'onnx', options: { headFromEmbedding: false } },
    { name: "'onnx', head = FusedMatMul on the embedding", attention: 'onnx', options: { headFromEmbedding: true } },
    { name: "'gqa', head = MatMul on the transposed copy", attention: 'gqa', options: { headFromEmbedding: false } },
  ];
  await interleave('decode', decodeCases, async (c) => PlanRunner.compile(ort, 'wasm', prepared, plan, c.attention, c.options), async (runner) => {
    runner.reset();
    let logits = await runner.step(promptOf(128));
    const steps = 64;
    const t = await timed(async () => {
      for (let s = 0; s < steps; s++) logits = await runner.step([argmax(logits)]);
      return argmax(logits);
    });
    return { wall: t.wall / steps, cpu: t.cpu / steps, unit: 'ms/token', token: t.value };
  });

  // Prefill: a 512-token prompt in one run or in chunks (the last chunk's logits only).
  const chunkCases = [512, 256, 128, 64, 32].map((chunk) => ({ name: `prefill 512 tokens in chunks of ${chunk}`, chunk }));
  let shared: PlanRunner | null = null;
  await interleave('prefill', chunkCases, async () => (shared ??= await PlanRunner.compile(ort, 'wasm', prepared, plan, 'onnx')), async (runner, c) => {
    runner.reset();
    runner.prefillChunk = c.chunk;
    const t = await timed(() => runner.step(promptOf(512)));
    return { wall: t.wall, cpu: t.cpu, unit: 'ms/prompt', token: argmax(t.value) };
  });
  console.log(JSON.stringify({ loadAtEnd: load() }));
}

/** Runs every case once per round, rounds interleaved; prints medians and per-round ratios against the first case. */
async function interleave<C extends { name: string }>(
  group: string,
  cases: C[],
  make: (c: C) => Promise<PlanRunner>,
  run: (r: PlanRunner, c: C) => Promise<{ wall: number; cpu: number; unit: string; token: number }>,
): Promise<void> {
  const runners: PlanRunner[] = [];
  for (const c of cases) runners.push(await make(c));
  for (let i = 0; i < cases.length; i++) await run(runners[i]!, cases[i]!); // warm-up
  const wall = cases.map((): number[] => []);
  const cpu = cases.map((): number[] => []);
  const tokens = cases.map((): number[] => []);
  let unit = '';
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < cases.length; i++) {
      const m = await run(runners[i]!, cases[i]!);
      wall[i]!.push(m.wall);
      cpu[i]!.push(m.cpu);
      tokens[i]!.push(m.token);
      unit = m.unit;
    }
  }
  cases.forEach((c, i) => {
    const ratio = (xs: number[][]) => xs[i]!.map((v, k) => xs[0]![k]! / v); // > 1: faster than the first case
    console.log(JSON.stringify({
      group, case: c.name, unit, nodes: runners[i]!.nodeCounts,
      wallMedian: +median(wall[i]!).toFixed(2), cpuMedian: +median(cpu[i]!).toFixed(2),
      speedVsFirstByCpu: +median(ratio(cpu)).toFixed(3), cpuRatioIqr: [+quantile(ratio(cpu), 0.25).toFixed(2), +quantile(ratio(cpu), 0.75).toFixed(2)],
      speedVsFirstByWall: +median(ratio(wall)).toFixed(3),
      sameTokenAsFirst: tokens[i]!.every((t, k) => t === tokens[0]![k]),
    }));
  });
  await Promise.all([...new Set(runners)].map((r) => r.release()));
}

async function benchSmall(): Promise<void> {
  const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
  // The LayerSkip recipe's shape (models/recipes/layerskip/model.py): head size 20 rules out GQA.
  const recipe = randomLlama({ dim: 160, hiddenDim: 432, nLayers: 8, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 256, tiedEmbeddings: true, ropeTheta: 10000 });
  const all5 = [0, 1, 2, 3, 4];
  const cases: { name: string; weights: PreparedWeights; attention: AttentionKind; plan: LlamaPlan; exit?: boolean }[] = [
    ...(['plain', 'onnx', 'gqa'] as const).map((attention) => ({ name: 'stories260K full', weights: prepareWeights(stories.config, stories.weights), attention, plan: { layers: all5 } })),
    { name: 'stories260K full, split at exit 2 (2 session.runs/step)', weights: prepareWeights(stories.config, stories.weights), attention: 'gqa', plan: { layers: all5, exit: 2 } },
    { name: 'stories260K early-exit path (2 of 5 blocks)', weights: prepareWeights(stories.config, stories.weights), attention: 'gqa', plan: { layers: all5, exit: 2 }, exit: true },
    ...(['plain', 'onnx'] as const).map((attention) => ({ name: 'recipe shape 160d x 8 (random weights)', weights: prepareWeights(recipe.config, recipe.weights), attention, plan: { layers: [0, 1, 2, 3, 4, 5, 6, 7] } })),
  ];
  // Sequentially: onnxruntime-web's WASM backend serializes session creation anyway.
  const runners: PlanRunner[] = [];
  for (const c of cases) runners.push(await PlanRunner.compile(ort, 'wasm', c.weights, c.plan, c.attention));
  const best = cases.map(() => ({ prefill: 0, decode: 0 }));
  const prompt = Array.from({ length: 64 }, (_, i) => 259 + (i % 200));
  const steps = 128;
  for (let r = 0; r < reps; r++) {
    for (let i = 0; i < cases.length; i++) {
      const runner = runners[i]!;
      runner.reset();
      let t = performance.now();
      let logits = await runner.step(prompt, { exit: cases[i]!.exit });
      best[i]!.prefill = Math.max(best[i]!.prefill, (prompt.length / (performance.now() - t)) * 1000);
      t = performance.now();
      for (let s = 0; s < steps; s++) logits = await runner.step([argmax(logits)], { exit: cases[i]!.exit });
      best[i]!.decode = Math.max(best[i]!.decode, (steps / (performance.now() - t)) * 1000);
    }
  }
  cases.forEach((c, i) =>
    console.log(JSON.stringify({ case: c.name, attention: c.attention, nodes: runners[i]!.nodeCounts, prefillTokensPerSecond: Math.round(best[i]!.prefill), decodeTokensPerSecond: Math.round(best[i]!.decode), decodeMsPerToken: +(1000 / best[i]!.decode).toFixed(2) })),
  );
  await Promise.all(runners.map((r) => r.release()));
}
