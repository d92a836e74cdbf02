/**
 * Node micro-benchmark of the runner (WASM EP, 1 thread): graph nodes per segment, prefill and
 * greedy decode speed per attention kind and per plan shape. Best of `reps` runs, cases
 * interleaved, because this machine is shared. `npx tsx workers/text/bench-node.ts [reps]`
 * Numbers go into models/llama/README.md.
 */
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import type { LlamaPlan } from '../../models/llama/types.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { argmax } from './sampler.ts';

const reps = Number(process.argv[2] ?? 3);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
// The LayerSkip recipe's shape (models/recipes/layerskip/model.py): head size 20 rules out GQA.
const recipe = randomLlama({ dim: 160, hiddenDim: 432, nLayers: 8, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 256, tiedEmbeddings: true, ropeTheta: 10000 });
const all5 = [0, 1, 2, 3, 4];
const cases: { name: string; model: typeof stories | typeof recipe; attention: AttentionKind; plan: LlamaPlan; exit?: boolean }[] = [
  ...(['plain', 'onnx', 'gqa'] as const).map((attention) => ({ name: 'stories260K full', model: stories, attention, plan: { layers: all5 } })),
  { name: 'stories260K full, split at exit 2 (2 session.runs/step)', model: stories, attention: 'gqa', plan: { layers: all5, exit: 2 } },
  { name: 'stories260K early-exit path (2 of 5 blocks)', model: stories, attention: 'gqa', plan: { layers: all5, exit: 2 }, exit: true },
  ...(['plain', 'onnx'] as const).map((attention) => ({ name: 'recipe shape 160d x 8 (random weights)', model: recipe, attention, plan: { layers: [0, 1, 2, 3, 4, 5, 6, 7] } })),
];
// Sequentially: onnxruntime-web's WASM backend serializes session creation anyway.
const runners: PlanRunner[] = [];
for (const c of cases) runners.push(await PlanRunner.compile(ort, 'wasm', prepareWeights(c.model.config, c.model.weights), c.plan, c.attention));
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
