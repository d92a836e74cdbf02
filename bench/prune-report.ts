/**
 * Depth-pruning report: for each model, score the blocks on the built-in calibration text
 * (models/llama/scoring.ts), then for k = 0..L-2 blocks removed by each criterion (first and last
 * block kept) measure held-out perplexity (reference forward pass, float64 sums) and greedy
 * decode speed (TextEngine, onnxruntime-web WASM in Node, 1 thread, 128 tokens after a warm-up,
 * best of `--reps`). Writes bench/PRUNING.md.
 *
 *   npx tsx bench/prune-report.ts [--reps 3] [--out bench/PRUNING.md]
 *
 * Models: stories260K always; stories-layerskip and stories-baseline (the LayerSkip recipe's HF
 * folders) when public/models/<id>/model.safetensors (or models/<id>/, where the recipe exports)
 * exists.
 *
 * Held-out text: stories sampled from stories260K through TextEngine at temperature 1 with fixed
 * seeds, decoded to text and re-encoded with each model's tokenizer. Why not War and Peace: all
 * three models are TinyStories-domain models with a 512-token vocabulary (the recipe's models are
 * distilled from stories260K's own samples), so adult 19th-century prose would measure the domain
 * gap, not what a block contributes. Sampled stories are in-domain for all three and disjoint from
 * the (hand-written) calibration text; they do flatter stories260K, whose own samples they are.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import { readLocalModelFile, REPO_ROOT } from '../models/local.ts';
import { choosePrunePlan, type BlockScores, type PruneCriterion } from '../models/llama/scoring.ts';
import { planPerplexity, scoreBlocks } from '../models/reference/scoring-ref.ts';
import { randomLlama } from '../models/llama/testing/random-model.ts';
import type { LlamaPlan } from '../models/llama/types.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from '../workers/text/calibration.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf, textModelFromLlama2c, type TextModel } from '../workers/text/model.ts';
import { HELD_OUT_MAX_TOKENS, HELD_OUT_SEEDS, heldOutWindows, sampleHeldOutStories } from './held-out.ts';
import { localHfFolder } from './local-hf-folder.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const reps = Number(arg('reps', '3'));
const outPath = arg('out', join(REPO_ROOT, 'bench', 'PRUNING.md'));
const CRITERIA: PruneCriterion[] = ['influence', 'angular', 'perplexity'];

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const log = (...a: unknown[]) => console.error(new Date().toISOString().slice(11, 19), ...a);
const loadStart = loadavg()[0]!;

const models: { id: string; from: string; model: TextModel }[] = [
  { id: 'stories260K', from: 'public/models/stories260K/stories260K.bin', model: textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')) },
];
for (const id of ['stories-layerskip', 'stories-baseline']) {
  const f = localHfFolder(id);
  if (f) models.push({ id, from: f.dir.slice(REPO_ROOT.length + 1), model: textModelFromHf(f.files) });
  else log(`${id}: no model.safetensors yet, skipped`);
}

// Held-out stories from stories260K, temperature 1, fixed seeds.
const stories260K = models[0]!.model;
const heldOutStories = await sampleHeldOutStories(ort);
log(`held-out: ${heldOutStories.length} stories`);

const paramsOf = (c: TextModel['config']) => {
  const hs = c.dim / c.nHeads;
  const perLayer = 2 * c.dim + c.dim * (c.nHeads + 2 * c.nKvHeads) * hs + c.nHeads * hs * c.dim + 3 * c.dim * c.hiddenDim;
  return c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.nLayers * perLayer + c.dim;
};

interface Row { criterion: PruneCriterion; k: number; removed: number[]; plan: LlamaPlan; ppl: number; tps: number; cpuTps: number }
interface Report { id: string; from: string; params: number; config: TextModel['config']; scores: BlockScores; scoreMs: number; heldOutTokens: number; calibrationTokens: number; rows: Row[] }
const reports: Report[] = [];
const pending: { report: Report; model: TextModel; plans: Map<string, LlamaPlan> }[] = [];

for (const { id, from, model } of models) {
  const c = model.config;
  const calibration = [c.bosTokenId, ...model.tokenizer.encode(DEFAULT_CALIBRATION_TEXT)];
  const t = performance.now();
  const scores = scoreBlocks(c, model.weights, calibration);
  const scoreMs = performance.now() - t;
  log(`${id}: scored ${c.nLayers} blocks on ${calibration.length} tokens in ${(scoreMs / 1000).toFixed(1)} s`);
  const heldOut = heldOutWindows(model, heldOutStories);
  const heldOutTokens = heldOut.reduce((n, w) => n + w.length, 0);

  const pplCache = new Map<string, number>();
  const plans = new Map<string, LlamaPlan>();
  const picks: Omit<Row, 'ppl' | 'tps' | 'cpuTps'>[] = [];
  for (let k = 0; k <= Math.max(0, c.nLayers - 2); k++) {
    for (const criterion of CRITERIA) {
      const { plan, removed } = choosePrunePlan(scores, { remove: k, criterion });
      const key = plan.layers.join(',');
      if (!pplCache.has(key)) {
        pplCache.set(key, planPerplexity(c, model.weights, plan, heldOut).perplexity);
        plans.set(key, plan);
        log(`${id} [${key}]: held-out ppl ${pplCache.get(key)!.toFixed(3)}`);
      }
      picks.push({ criterion, k, removed, plan });
    }
  }
  reports.push({ id, from, params: paramsOf(c), config: c, scores, scoreMs, heldOutTokens, calibrationTokens: calibration.length, rows: picks.map((p) => ({ ...p, ppl: pplCache.get(p.plan.layers.join(','))!, tps: 0, cpuTps: 0 })) });
  pending.push({ report: reports.at(-1)!, model, plans });
}

// Decode speed: every (model, plan) pair interleaved round-robin, so the load of this shared
// machine hits all of them alike; each measured run follows a warm-up generation on that plan.
const timed: { report: Report; engine: TextEngine; bos: number; plans: Map<string, LlamaPlan>; tps: Map<string, number>; cpuTps: Map<string, number> }[] = [];
for (const { report, model, plans } of pending) timed.push({ report, engine: await TextEngine.create(ort, 'wasm', model), bos: model.config.bosTokenId, plans, tps: new Map(), cpuTps: new Map() });
/**
 * 128 greedy tokens: wall decode tok/s (the engine's stats) and tokens per second of this
 * process's CPU time (user + system, whole generation): with 1 WASM thread on the main thread the
 * latter does not count time the OS gave to other jobs on this shared machine.
 */
const greedy = async (engine: TextEngine, bos: number) => {
  const cpu0 = process.cpuUsage();
  for await (const ev of engine.generate([bos], { maxTokens: 128, greedy: true, stopTokens: [] })) {
    if (ev.type !== 'done') continue;
    const cpu = process.cpuUsage(cpu0);
    return { wall: ev.stats.decodeTokensPerSecond, cpu: ev.tokens.length / ((cpu.user + cpu.system) / 1e6) };
  }
  return { wall: 0, cpu: 0 };
};
for (const t of timed) for (let i = 0; i < 3; i++) await greedy(t.engine, t.bos); // V8 + WASM warm-up
for (let r = 0; r < reps; r++) {
  for (const t of timed) {
    for (const [key, plan] of t.plans) {
      await t.engine.setPlan(plan);
      await greedy(t.engine, t.bos); // warm-up on this plan
      const m = await greedy(t.engine, t.bos);
      t.tps.set(key, Math.max(t.tps.get(key) ?? 0, m.wall));
      t.cpuTps.set(key, Math.max(t.cpuTps.get(key) ?? 0, m.cpu));
    }
  }
  log(`decode timing round ${r + 1}/${reps} done`);
}
for (const t of timed) {
  for (const row of t.report.rows) {
    row.tps = t.tps.get(row.plan.layers.join(','))!;
    row.cpuTps = t.cpuTps.get(row.plan.layers.join(','))!;
  }
  for (const [key, tps] of t.tps) log(`${t.report.id} [${key}]: ${tps.toFixed(0)} tok/s wall, ${t.cpuTps.get(key)!.toFixed(0)} tok per CPU-s`);
  await t.engine.dispose();
}

// Scoring time at the LayerSkip recipe's shape (~2.4M parameters) when the trained one is absent.
let recipeTiming = '';
if (!reports.some((r) => r.id === 'stories-layerskip')) {
  const { config, weights } = randomLlama({ dim: 160, hiddenDim: 432, nLayers: 8, nHeads: 8, nKvHeads: 4, vocabSize: 512, maxSeqLen: 256, tiedEmbeddings: true, ropeTheta: 10000 });
  const calib = [1, ...stories260K.tokenizer.encode(DEFAULT_CALIBRATION_TEXT)];
  const t = performance.now();
  const s = scoreBlocks(config, weights, calib);
  const ms = performance.now() - t;
  recipeTiming = `Recipe shape with random weights (160d x 8 blocks, hidden 432, vocab 512, ${(paramsOf(config) / 1e6).toFixed(2)}M parameters), ${calib.length} calibration tokens: scoring took ${(ms / 1000).toFixed(1)} s (similarity pass ${(s.timing.similarityMs / 1000).toFixed(1)} s, ${config.nLayers + 1} perplexity passes ${(s.timing.perplexityMs / 1000).toFixed(1)} s).`;
  log(recipeTiming);
}

const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '—');
const md: string[] = [];
md.push('# Depth pruning on the device: scores, held-out perplexity, decode speed', '');
md.push('```', 'npx tsx bench/prune-report.ts --reps ' + reps, '```', '');
md.push(
  `Generated ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC by \`bench/prune-report.ts\` (Node ${process.version}, ${cpus().length} cores shared with other jobs, load average ${loadStart.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end: treat tok/s as ratios within a table more than absolutes).`,
  '',
  '- **Scores** (`models/llama/scoring.ts`): on the built-in calibration text (`workers/text/calibration.ts`, hand-written TinyStories-style prose) with BOS, in windows of the model context. BI = 1 - mean cos(h_in, h_out) (ShortGPT), angular = mean arccos(cos)/π, "ppl w/o l" = calibration perplexity with only block l removed (Shortened LLaMA). One shot: blocks are ranked once on the full model, lowest first; the first and last block are always kept.',
  `- **Held-out perplexity**: ${HELD_OUT_SEEDS.length} stories sampled from stories260K by \`TextEngine\` (temperature 1, seeds ${HELD_OUT_SEEDS.join(', ')}, at most ${HELD_OUT_MAX_TOKENS} tokens each, from BOS), decoded and re-encoded per model, each scored as its own window from position 0; teacher-forced through the reference forward pass with the pruned plan. Not War and Peace: these are TinyStories-domain models with a 512-token vocabulary (the recipe models are distilled from stories260K samples), so adult prose would measure the domain gap rather than the blocks. Caveat: the text is stories260K's own samples, which flatters stories260K.`,
  `- **Decode tok/s**: \`TextEngine\` with the pruned plan (onnxruntime-web WASM EP in Node, 1 thread, \`onnx\` attention), greedy from BOS, 128 tokens with no stop token, after a 128-token warm-up on that plan; all models' plans interleaved round-robin, best of ${reps} rounds. "wall" is the engine's decode tok/s; "per CPU-s" is 128 tokens over this process's CPU time for the whole generation (1 WASM thread runs on the main thread, so it leaves out time the OS gave to other jobs; it is the steadier number on a loaded machine).`,
  '',
);
md.push('## Summary: best held-out perplexity per blocks removed (criteria that reach it)', '');
md.push(`| k removed | ${reports.map((r) => r.id).join(' | ')} |`, `|---|${reports.map(() => '---|').join('')}`);
for (let k = 0; k <= Math.max(...reports.map((r) => r.config.nLayers - 2)); k++) {
  const cells = reports.map((r) => {
    const rows = r.rows.filter((x) => x.k === k);
    if (rows.length === 0) return '';
    const best = Math.min(...rows.map((x) => x.ppl));
    const who = rows.filter((x) => x.ppl === best).map((x) => x.criterion);
    return `${f3(best)} (${who.length === CRITERIA.length ? 'all' : who.join(', ')})`;
  });
  md.push(`| ${k} | ${cells.join(' | ')} |`);
}
md.push('');
for (const r of reports) {
  const c = r.config;
  md.push(`## ${r.id}`, '');
  md.push(`From \`${r.from}\`: ${c.nLayers} blocks, dim ${c.dim}, hidden ${c.hiddenDim}, heads ${c.nHeads}/${c.nKvHeads}, vocab ${c.vocabSize}, context ${c.maxSeqLen}, ${(r.params / 1e6).toFixed(2)}M parameters. Calibration ${r.calibrationTokens} tokens; held-out ${r.heldOutTokens} tokens.`, '');
  md.push(`Scoring took **${(r.scoreMs / 1000).toFixed(1)} s** (similarity pass ${(r.scores.timing.similarityMs / 1000).toFixed(2)} s; ${c.nLayers + 1} perplexity passes ${(r.scores.timing.perplexityMs / 1000).toFixed(1)} s). Calibration perplexity of the full model: ${f3(r.scores.fullPerplexity)}.`, '');
  md.push('| block | BI | angular | calib ppl w/o block |', '|---|---|---|---|');
  for (let l = 0; l < c.nLayers; l++) md.push(`| ${l} | ${r.scores.influence[l]!.toFixed(4)} | ${r.scores.angular[l]!.toFixed(4)} | ${f3(r.scores.perplexity[l]!)} |`);
  md.push('');
  md.push('| k removed | criterion | removed (in order) | kept blocks | held-out ppl | decode tok/s (wall) | decode tok per CPU-s |', '|---|---|---|---|---|---|---|');
  for (const row of r.rows) md.push(`| ${row.k} | ${row.criterion} | ${row.removed.join(', ') || '—'} | ${row.plan.layers.join(',')} | ${f3(row.ppl)} | ${row.tps.toFixed(0)} | ${row.cpuTps.toFixed(0)} |`);
  md.push('');
}
if (recipeTiming) md.push('## Scoring time at 2.4M parameters', '', recipeTiming, '');
if (!reports.some((r) => r.id === 'stories-layerskip')) md.push('stories-layerskip / stories-baseline: their `model.safetensors` did not exist when this ran; rerun the command once the recipe has exported them.', '');
// bench/width-report.ts writes its own section into the same file: keep it.
const WIDTH_START = '<!-- width-report:';
const previous = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
const widthSection = previous.includes(WIDTH_START) ? previous.slice(previous.indexOf(WIDTH_START)) : '';
writeFileSync(outPath, md.join('\n') + (widthSection ? `\n${widthSection}` : ''));
log(`wrote ${outPath}`);
