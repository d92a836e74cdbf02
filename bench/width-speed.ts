/**
 * `npx tsx bench/width-speed.ts [--fraction 0.2] [--weights f32,q8] [--methods wanda-sp,flap] [--rounds 5] [--tokens 64]`:
 * issue #14's speed goal, width pruning at the SmolLM2-135M shape. **Synthetic weights**
 * (models/synthetic/, the published shape: 30 blocks, dim 576, 9/3 heads, FFN 1536, tied 49152
 * head), so the scores that pick the cut mean nothing and only the shapes matter: what a decode
 * step costs with `fraction` of the whole model's parameters removed from the blocks' linears.
 *
 * One Node process (onnxruntime-web WASM, 1 thread) holds the full engine and one engine per
 * method, each pruned with `TextEngine.pruneWidth` and then, for q8, compressed (width before
 * compression, as the SDK requires). Rounds alternate the engines (order reversed every other
 * round), each a greedy generation of `tokens` after a 16-token prompt; a token's cost is the
 * process CPU time of the decode (a 1-thread session runs on the calling thread), so engines see
 * the same machine. Prints one JSON line: per weights and method, params removed, median tok per
 * CPU-second, and the speed-up over full width as the median of per-round ratios with its range.
 */
import { openAsBlob, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { blockParams } from '../models/compress/width-select.ts';
import { REPO_ROOT } from '../models/local.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { openTextModelFromHf } from '../workers/text/model.ts';
import type { WidthMethod } from '../workers/text/width-prune.ts';
import { headSizeOf } from '../models/llama/types.ts';

const { values } = parseArgs({
  options: {
    fraction: { type: 'string', default: '0.2' },
    weights: { type: 'string', default: 'f32,q8' },
    methods: { type: 'string', default: 'wanda-sp,flap' },
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '64' },
  },
});
const fraction = Number(values.fraction);
const rounds = Number(values.rounds);
const tokens = Number(values.tokens);
const log = (...a: unknown[]) => console.error(new Date().toISOString().slice(11, 19), ...a);

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const dir = join(REPO_ROOT, 'public', 'models', 'synthetic-smollm2-135m');
const openModel = async () => openTextModelFromHf(Object.fromEntries(await Promise.all(readdirSync(dir).filter((n) => /\.(json|safetensors)$/.test(n)).map(async (n) => [n, await openAsBlob(join(dir, n))] as const))));

/** Tokens per CPU-second of one greedy decode (the prefill excluded). */
async function decodeRate(engine: TextEngine): Promise<number> {
  const prompt = Array.from({ length: 16 }, (_, i) => 100 + i);
  let cpu0: NodeJS.CpuUsage | null = null;
  let n = 0;
  for await (const ev of engine.generate(prompt, { maxTokens: tokens, greedy: true, stopTokens: [], addBos: false })) {
    if (ev.type !== 'token') continue;
    if (++n === 1) cpu0 = process.cpuUsage(); // the first token closes the prefill
  }
  const used = process.cpuUsage(cpu0!);
  return (n - 1) / ((used.user + used.system) / 1e6);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
const results = [];
for (const weights of values.weights.split(',') as ('f32' | 'q8')[]) {
  const engines: { name: string; engine: TextEngine; removed: number }[] = [];
  const model = await openModel();
  const c = model.config;
  const shape = { dim: c.dim, headSize: headSizeOf(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
  const blockLinears = c.nLayers * blockParams(shape);
  const total = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.dim + blockLinears + c.nLayers * 2 * c.dim;
  for (const name of ['full', ...values.methods.split(',')]) {
    const engine = await TextEngine.create(ort, 'wasm', await openModel());
    let removed = 0;
    if (name !== 'full') {
      const ratio = (fraction * total) / blockLinears;
      const out = await engine.pruneWidth({ ratio, method: name as WidthMethod });
      removed = (out.params.before - out.params.after) / total;
    }
    if (weights === 'q8') await engine.compress({ linear: 'q8' });
    log(`${weights} ${name}: compiled, ${(removed * 100).toFixed(1)}% of params removed`);
    engines.push({ name, engine, removed });
  }
  for (const e of engines) await decodeRate(e.engine); // warm-up
  const rates = new Map(engines.map((e) => [e.name, [] as number[]]));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? engines : [...engines].reverse();
    for (const e of order) rates.get(e.name)!.push(await decodeRate(e.engine));
    log(`${weights} round ${r + 1}: ${engines.map((e) => `${e.name} ${rates.get(e.name)!.at(-1)!.toFixed(1)}`).join(', ')} tok per CPU-s`);
  }
  const full = rates.get('full')!;
  for (const e of engines.slice(1)) {
    const per = rates.get(e.name)!.map((x, i) => x / full[i]!);
    results.push({
      model: 'smollm2-135m',
      synthetic: true,
      weights,
      method: e.name,
      params_removed: Number(e.removed.toFixed(4)),
      full_tok_per_cpu_s: Number(median(full).toFixed(2)),
      pruned_tok_per_cpu_s: Number(median(rates.get(e.name)!).toFixed(2)),
      decode_speedup: Number(median(per).toFixed(3)),
      speedup_range: [Number(Math.min(...per).toFixed(3)), Number(Math.max(...per).toFixed(3))],
    });
  }
  for (const e of engines) await e.engine.dispose();
}
console.log(JSON.stringify({ fraction, rounds, tokens, runtime: { backend: 'wasm', where: 'node', threads: 1 }, rows: results }));
