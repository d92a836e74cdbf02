/**
 * `npx tsx bench/width-speed.ts [--fraction 0.2] [--weights f32,q8] [--methods wanda-sp,flap] [--rounds 5] [--tokens 64]`:
 * issue #14's speed goal, width pruning at the SmolLM2-135M shape. **Synthetic weights**
 * (models/synthetic/, the published shape: 30 blocks, dim 576, 9/3 heads, FFN 1536, tied 49152
 * head), so the scores that pick the cut mean nothing and only the shapes matter: what a decode
 * step costs with `fraction` of the whole model's parameters removed. `--methods` may also name
 * `depth` (whole blocks). The cutting and measuring is bench/shape-speed.ts, which bench:prune's
 * synthetic rows also use. Prints one JSON line: per weights and method, params removed, median
 * tok per CPU-second, and the speed-up over full size as the median of per-round ratios with its range.
 */
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../models/local.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { shapeSpeedRows, type ShapeCut } from './shape-speed.ts';

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
const log = (line: string) => console.error(new Date().toISOString().slice(11, 19), line);

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const rows = await shapeSpeedRows(ort, {
  dir: join(REPO_ROOT, 'public', 'models', 'synthetic-smollm2-135m'),
  model: 'smollm2-135m',
  fraction,
  weights: values.weights.split(',') as ('f32' | 'q8')[],
  methods: values.methods.split(',') as ShapeCut[],
  rounds,
  tokens,
  log,
});
console.log(JSON.stringify({ fraction, rounds, tokens, runtime: { backend: 'wasm', where: 'node', threads: 1 }, rows }));
