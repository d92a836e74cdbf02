/**
 * CLI: writes a synthetic Hugging Face folder in a published model's shape (folder.ts).
 *
 *   npx tsx models/synthetic/generate.ts --shape smollm2-135m --out DIR [--dtype bf16|f16|f32] [--shard-mb 500] [--seed 0]
 *
 * Shapes: smollm2-135m, smollm2-360m, qwen2.5-0.5b, llama-3.2-1b.
 */
import { parseArgs } from 'node:util';
import { writeSyntheticFolder } from './folder.ts';
import { SHAPES, isShapeId, publishedShape } from './shapes.ts';
import type { SyntheticDtype } from './values.ts';

const { values } = parseArgs({
  options: {
    shape: { type: 'string' },
    out: { type: 'string' },
    dtype: { type: 'string', default: 'bf16' },
    'shard-mb': { type: 'string', default: '500' },
    seed: { type: 'string', default: '0' },
  },
});
const usage = `usage: generate.ts --shape ${Object.keys(SHAPES).join('|')} --out DIR [--dtype bf16|f16|f32] [--shard-mb 500] [--seed 0]`;
const fail = (why: string): never => {
  console.error(`${why}\n${usage}`);
  process.exit(2);
};
const shape = values.shape ?? fail('--shape is required');
if (!isShapeId(shape)) fail(`unknown shape ${shape}`);
const out = values.out ?? fail('--out is required');
const dtype = values.dtype as SyntheticDtype;
if (!['bf16', 'f16', 'f32'].includes(dtype)) fail(`unknown dtype ${dtype}`);
const shardMb = Number(values['shard-mb']);
const seed = Number(values.seed);
if (!(shardMb > 0)) fail('--shard-mb must be a positive number');
if (!Number.isInteger(seed) || seed < 0) fail('--seed must be a non-negative integer');

const started = performance.now();
const result = writeSyntheticFolder(publishedShape(shape as keyof typeof SHAPES), out, { dtype, seed, maxShardBytes: shardMb * 1e6 });
console.log(`${out}: ${result.parameters} parameters, ${(result.weightBytes / 1e6).toFixed(1)} MB of ${dtype} weights in ${((performance.now() - started) / 1000).toFixed(1)} s`);
for (const f of result.files) console.log(`  ${f}`);
