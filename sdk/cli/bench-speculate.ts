/**
 * Self-speculative decoding measurement (Node, WASM, 1 thread): for a model (registry id or
 * folder) and each exit, greedy tokens/s at full depth vs. speculative, and the acceptance rate.
 * Also checks the two produce the same tokens. Best of `reps`, full and speculative interleaved.
 *
 *   npx tsx sdk/cli/bench-speculate.ts <model> [maxTokens=200] [drafts=2,4] [reps=3]
 */
import { loadOrt } from '../../workers/ort/runtime.ts';
import type { GenerateOptions, TextEvent } from '../../core/text-types.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { loadModel } from './load.ts';

const [id = 'stories260K', maxTokensArg = '200', draftsArg = '2,4', repsArg = '3'] = process.argv.slice(2);
const drafts = draftsArg.split(',').map(Number);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const full = await TextEngine.create(ort, 'wasm', loadModel(id));
const nLayers = full.config.nLayers;
const layers = Array.from({ length: nLayers }, (_, i) => i);
const opts: GenerateOptions = { maxTokens: Number(maxTokensArg), greedy: true, stopTokens: [] };
const prompt = 'Once upon a time';

async function run(engine: TextEngine, o: GenerateOptions): Promise<Extract<TextEvent, { type: 'done' }>> {
  for await (const ev of engine.generate(prompt, o)) if (ev.type === 'done') return ev;
  throw new Error('no done event');
}

for (let exit = 1; exit < nLayers; exit++) {
  const spec = await TextEngine.create(ort, 'wasm', loadModel(id), { plan: { layers, exit } });
  for (const draft of drafts) {
    let fullBest = 0;
    let specBest = 0;
    let acceptance = 0;
    let same = true;
    for (let r = 0; r < Number(repsArg); r++) {
      const a = await run(full, opts);
      const b = await run(spec, { ...opts, speculate: { draft } });
      fullBest = Math.max(fullBest, a.stats.decodeTokensPerSecond);
      specBest = Math.max(specBest, b.stats.decodeTokensPerSecond);
      acceptance = b.stats.speculation!.acceptance;
      same &&= a.tokens.join() === b.tokens.join();
    }
    console.log(JSON.stringify({ model: id, exit, draft, acceptance: +acceptance.toFixed(3), fullTokensPerSecond: Math.round(fullBest), speculativeTokensPerSecond: Math.round(specBest), sameTokens: same }));
  }
  await spec.dispose();
}
await full.dispose();
