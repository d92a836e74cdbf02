/**
 * Node micro-benchmark of the runner on stories260K (WASM EP, 1 thread): node counts per graph
 * and greedy decode speed for each attention kind, early and late in the context (the KV concat
 * copies grow with the context). `npx tsx workers/text/bench-node.ts`
 * Numbers go into models/llama/README.md.
 */
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { fullPlan } from '../../models/llama/types.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { argmax } from './sampler.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const window = 100;
const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
// The LayerSkip recipe's shape (models/recipes/layerskip/model.py): head size 20 rules out GQA.
const recipe = randomLlama({ dim: 160, hiddenDim: 432, nLayers: 8, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 256, tiedEmbeddings: true, ropeTheta: 10000 });
const cases = [
  ...(['plain', 'onnx', 'gqa'] as const).map((attention) => ({ model: 'stories260K', ...stories, attention })),
  ...(['plain', 'onnx'] as const).map((attention) => ({ model: 'recipe-shape (random weights)', ...recipe, attention })),
];
for (const { model, config, weights, attention } of cases) {
  const prepared = prepareWeights(config, weights);
  const runner = await PlanRunner.compile(ort, 'wasm', prepared, fullPlan(config), attention);
  const prompt = Array.from({ length: 64 }, (_, i) => 259 + (i % 200));
  let t = performance.now();
  let logits = await runner.step(prompt);
  const prefillTokensPerSecond = Math.round((prompt.length / (performance.now() - t)) * 1000);
  const windows: Record<string, number> = {};
  let from = runner.position;
  t = performance.now();
  while (runner.position < config.maxSeqLen) {
    logits = await runner.step([argmax(logits)]);
    if (runner.position - from === window) {
      windows[`decode tok/s @${from}-${runner.position}`] = Math.round((window / (performance.now() - t)) * 1000);
      from = runner.position;
      t = performance.now();
    }
  }
  console.log(JSON.stringify({ model, attention, nodes: runner.nodeCounts, prefill64TokensPerSecond: prefillTokensPerSecond, ...windows }));
  await runner.release();
}
