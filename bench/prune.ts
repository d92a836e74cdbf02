/**
 * `npm run bench:prune -- [--json] [--reps 2] [--rounds 5] [--shapes smollm2-135m]`: issue #14's one
 * table. Every way Whittle makes a model smaller, as rows of { model, method, params_removed,
 * perplexity, perplexity_ratio, decode_speedup, bytes } (plus what each source adds):
 *
 * - depth (k = 1..4 blocks, each criterion), FLAP (with and without its bias compensation, and
 *   per-block standardization), Wanda-sp and the depth / width mix `compress({ target })` picks,
 *   at 10-50% of the parameters, on stories-layerskip and stories-baseline: bench/width-report.ts;
 * - Wanda and magnitude 50% unstructured and 2:4, alone and with q8 / q4, with the stored
 *   variant's bytes: bench/sparsity-report.ts (which also measures stories260K);
 * - the sheared recipe's model (models/stories-sheared) against its parent stories-layerskip
 *   dense: measured here, on the same six held-out stories as every row above;
 * - with `--shapes smollm2-135m`: decode speed of depth, FLAP and Wanda-sp at 20% of the
 *   parameters removed, f32 and q8, on the synthetic SmolLM2-135M folder
 *   (public/models/synthetic-smollm2-135m, made by models/synthetic/generate.ts; not in CI):
 *   random weights, so those rows have `synthetic: true`, no perplexity and a `why`.
 *
 * The two reports run as child processes, each as its own command would (they rewrite their
 * sections of bench/PRUNING.md); their rows' speed-ups are against the dense model measured in
 * the same process. Everything is onnxruntime-web WASM in Node, 1 thread; speed-ups count this
 * process's CPU time (the steadier measure on a shared machine). Progress goes to stderr; the
 * last line of stdout is the JSON.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WhittleError } from '../core/errors.ts';
import { blockParams } from '../models/compress/width-select.ts';
import { headSizeOf, type LlamaConfig } from '../models/llama/types.ts';
import { REPO_ROOT } from '../models/local.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf } from '../workers/text/model.ts';
import { heldOutPerplexity, heldOutWindows, sampleHeldOutStories } from './held-out.ts';
import { interleavedRates, median, speedup } from './interleaved-speed.ts';
import { localHfFolder } from './local-hf-folder.ts';
import { shapeSpeedRows } from './shape-speed.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    reps: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '5' },
    tokens: { type: 'string', default: '64' },
    shapes: { type: 'string', default: '' },
  },
});
const positiveInt = (name: 'reps' | 'rounds' | 'tokens') => {
  const v = Number(values[name]);
  if (!Number.isInteger(v) || v < 1) throw new WhittleError('INVALID_ARGUMENT', `--${name} must be a positive integer, got ${values[name]}`);
  return v;
};
const reps = positiveInt('reps');
const rounds = positiveInt('rounds');
const tokens = positiveInt('tokens');
const SHAPES: Record<string, string> = { 'smollm2-135m': join(REPO_ROOT, 'public', 'models', 'synthetic-smollm2-135m') };
const shapes = values.shapes.split(',').filter((s) => s !== '');
for (const s of shapes) if (!(s in SHAPES)) throw new WhittleError('INVALID_ARGUMENT', `--shapes: unknown shape ${s}; known: ${Object.keys(SHAPES).join(', ')}`);

const log = (line: string) => console.error(new Date().toISOString().slice(11, 19), line);
const started = new Date();
const loadStart = loadavg()[0]!;

/** A report script's last stdout line, parsed: its stderr passes through as progress. */
function runReport(script: string, args: string[]): Promise<{ rows: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    // The same Node and tsx loader flags this process runs under.
    const child = spawn(process.execPath, [...process.execArgv, join(REPO_ROOT, 'bench', script), ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const last = out.trim().split('\n').at(-1) ?? '';
      // A failed measurement, not bad input: a plain Error with the script's exit code.
      if (code !== 0) reject(new Error(`bench/${script} exited ${code}`));
      else resolve(JSON.parse(last) as { rows: Record<string, unknown>[] });
    });
  });
}

const paramsOf = (c: LlamaConfig) => {
  const linear = blockParams({ dim: c.dim, headSize: headSizeOf(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim });
  return c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.dim + c.nLayers * (linear + 2 * c.dim);
};

/** stories-sheared against its parent: held-out perplexity on the shared stories, interleaved decode speed. */
async function shearedRows(): Promise<Record<string, unknown>[]> {
  const parentFolder = localHfFolder('stories-layerskip');
  const shearedFolder = localHfFolder('stories-sheared');
  if (!parentFolder || !shearedFolder) {
    log(`sheared: ${parentFolder ? 'stories-sheared' : 'stories-layerskip'} has no model.safetensors, skipped`);
    return [];
  }
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const stories = await sampleHeldOutStories(ort);
  const parent = textModelFromHf(parentFolder.files);
  const sheared = textModelFromHf(shearedFolder.files);
  const engines = [
    { name: 'dense', engine: await TextEngine.create(ort, 'wasm', parent), params: paramsOf(parent.config), windows: heldOutWindows(parent, stories) },
    { name: 'sheared', engine: await TextEngine.create(ort, 'wasm', sheared), params: paramsOf(sheared.config), windows: heldOutWindows(sheared, stories) },
  ];
  const perplexity = new Map<string, number>();
  for (const e of engines) perplexity.set(e.name, await heldOutPerplexity(e.engine, e.windows));
  const rates = await interleavedRates(engines, { rounds, tokens, log: (line) => log(`sheared vs parent ${line}`) });
  for (const e of engines) await e.engine.dispose();
  const dense = perplexity.get('dense')!;
  return engines.map((e) => {
    const s = speedup(rates.get('dense')!, rates.get(e.name)!);
    return {
      model: e.name === 'dense' ? 'stories-layerskip' : 'stories-sheared',
      method: e.name,
      parent: 'stories-layerskip',
      weights: 'f32',
      params_removed: Number((1 - e.params / engines[0]!.params).toFixed(4)),
      perplexity: Number(perplexity.get(e.name)!.toFixed(4)),
      perplexity_ratio: Number((perplexity.get(e.name)! / dense).toFixed(4)),
      decode_speedup: Number(s.median.toFixed(3)),
      speedup_range: s.range.map((x) => Number(x.toFixed(3))),
      tok_per_cpu_s: Number(median(rates.get(e.name)!).toFixed(1)),
      bytes: e.params * 4,
      bytes_basis: 'fp32 parameters kept',
      kept: e.name === 'dense' ? '' : `KV heads ${sheared.config.nKvHeads}, FFN ${sheared.config.hiddenDim} per block (learned masks + 300 steps of continued pretraining: models/recipes/sheared)`,
      source: 'prune',
    };
  });
}

const skipped: { rows: string; why: string }[] = [];
log('sheared: stories-sheared against stories-layerskip');
const sheared = await shearedRows();
if (sheared.length === 0) skipped.push({ rows: 'stories-sheared', why: 'models/stories-sheared or stories-layerskip has no model.safetensors' });
log('width and depth: bench/width-report.ts');
const width = await runReport('width-report.ts', ['--reps', String(reps)]);
log('sparsity: bench/sparsity-report.ts');
const sparsity = await runReport('sparsity-report.ts', ['--reps', String(reps)]);

const synthetic: Record<string, unknown>[] = [];
for (const [shape, dir] of Object.entries(SHAPES)) {
  if (!shapes.includes(shape)) {
    log(`${shape}: speed rows not requested (--shapes ${shape}; needs ${dir}, made by models/synthetic/generate.ts)`);
    skipped.push({ rows: shape, why: `not requested (--shapes ${shape})` });
    continue;
  }
  if (!existsSync(join(dir, 'config.json'))) {
    log(`${shape}: ${dir} is absent (npx tsx models/synthetic/generate.ts --shape ${shape} --out ${dir}), its rows skipped`);
    skipped.push({ rows: shape, why: `${dir} is absent` });
    continue;
  }
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  for (const row of await shapeSpeedRows(ort, { dir, model: shape, fraction: 0.2, weights: ['f32', 'q8'], methods: ['depth', 'flap', 'wanda-sp'], rounds, tokens, log: (line) => log(`${shape} ${line}`) })) {
    synthetic.push({ ...row, perplexity: null, perplexity_ratio: null, bytes: null, why: 'synthetic weights (the published shape, random values): only the speed means something; no perplexity, and bytes were not measured', source: 'shape-speed' });
  }
}

const rows = [...width.rows.map((r) => ({ ...r, source: 'width-report' })), ...sparsity.rows.map((r) => ({ ...r, source: 'sparsity-report' })), ...sheared, ...synthetic];
const result = { benchmark: 'prune', started: started.toISOString(), runtime: { backend: 'wasm', where: 'node', threads: 1, cpus: cpus().length, loadavg_start: loadStart, loadavg_end: loadavg()[0] }, reps, rounds, tokens, skipped, rows };
console.log(values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
