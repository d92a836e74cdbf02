/**
 * Node micro-benchmark of the runner on stories260K (WASM EP, 1 thread): node counts per graph
 * and greedy decode tokens/s for each attention kind. `npx tsx workers/text/bench-node.ts [steps]`
 * Numbers go into models/llama/README.md.
 */
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { fullPlan } from '../../models/llama/types.ts';
import { loadOrt } from '../ort/runtime.ts';
import { PlanRunner } from './runner.ts';
import { argmax } from './sampler.ts';

const steps = Number(process.argv[2] ?? 200);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const { config, weights } = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const prepared = prepareWeights(config, weights);
for (const attention of ['plain', 'gqa'] as const) {
  const runner = await PlanRunner.compile(ort, 'wasm', prepared, fullPlan(config), attention);
  for (let rep = 0; rep < 2; rep++) {
    runner.reset();
    let logits = await runner.step([1]);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) logits = await runner.step([argmax(logits)]);
    const ms = performance.now() - t0;
    if (rep === 1) console.log(JSON.stringify({ attention, nodes: runner.nodeCounts, steps, decodeTokensPerSecond: Math.round((steps / ms) * 1000), msPerToken: +(ms / steps).toFixed(3) }));
  }
  await runner.release();
}
