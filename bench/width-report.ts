/**
 * Width against depth pruning at equal parameters: held-out perplexity and greedy decode speed
 * of stories-layerskip and stories-baseline (the LayerSkip recipe's trained models) with
 *   - depth: k = 1..4 blocks removed (`scoreBlocks` on the calibration text, each of the three
 *     criteria; the table shows the best held-out result among them, which flatters depth);
 *   - FLAP (adaptive ratios + bias compensation), FLAP without its compensation (ablation), and
 *     Wanda-sp (uniform ratio): `TextEngine.pruneWidth` at the fraction of the model's parameters
 *     each depth point removes, and at 10 / 20 / 30 / 40 / 50 %;
 *   - the mix `lm.compress({ target: { params } })` picks (workers/text/target-prune.ts) at 20 / 30 / 40 / 50 %
 *     and the depth points.
 * Everything runs through the engine's compiled graphs (onnxruntime-web WASM in Node, 1 thread):
 * scoring and calibration through probe graphs, perplexity teacher-forced one token per step.
 *
 *   npx tsx bench/width-report.ts [--reps 2] [--json]
 *
 * Writes its section into bench/PRUNING.md (between the width markers; bench/prune-report.ts
 * keeps it) and prints one JSON line last: { rows: [{ model, method, params_removed, perplexity,
 * perplexity_ratio, decode_speedup, bytes }] }.
 *
 * Held-out text: the same six stories bench/prune-report.ts samples from stories260K (temperature
 * 1, seeds 101-106, 160 tokens), so the dense perplexities here and there agree; the calibration
 * text is the hand-written DEFAULT_CALIBRATION_TEXT, disjoint from them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { blockParams } from '../models/compress/width-select.ts';
import { REPO_ROOT } from '../models/local.ts';
import { choosePrunePlan, type PruneCriterion } from '../models/llama/scoring.ts';
import type { LlamaConfig, LlamaPlan } from '../models/llama/types.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from '../workers/text/calibration.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf, type TextModel } from '../workers/text/model.ts';
import { pruneToTarget } from '../workers/text/target-prune.ts';
import type { WidthMethod } from '../workers/text/width-prune.ts';
import { decodeSpeed, heldOutPerplexity, heldOutWindows, sampleHeldOutStories } from './held-out.ts';
import { localHfFolder } from './local-hf-folder.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const reps = Number(arg('reps', '2'));
const WIDTH_START = '<!-- width-report: bench/width-report.ts writes this section; bench/prune-report.ts keeps it -->';
const WIDTH_END = '<!-- /width-report -->';
const outPath = join(REPO_ROOT, 'bench', 'PRUNING.md');
const log = (...a: unknown[]) => console.error(new Date().toISOString().slice(11, 19), ...a);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const loadStart = loadavg()[0]!;

function hfModel(id: string): TextModel | null {
  const f = localHfFolder(id);
  return f ? textModelFromHf(f.files) : null;
}

// Held-out stories, exactly as bench/prune-report.ts samples them.
const heldOutStories = await sampleHeldOutStories(ort);

/** Embedding (+ untied head), final norm and every block (linears + 2 norms). */
const totalParams = (c: LlamaConfig, blockLinear: number) => c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.dim + c.nLayers * (blockLinear + 2 * c.dim);

interface Row { model: string; method: string; target: number; paramsRemoved: number; perplexity: number; tps: number; cpuTps: number; plan: LlamaPlan; detail: string }
const rows: Row[] = [];
const dense: Record<string, { perplexity: number; tps: number; cpuTps: number; params: number }> = {};

for (const id of ['stories-layerskip', 'stories-baseline']) {
  const model = hfModel(id);
  if (!model) {
    log(`${id}: no model.safetensors, skipped`);
    continue;
  }
  const c = model.config;
  const hs = c.dim / c.nHeads;
  const shape = { dim: c.dim, headSize: hs, nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
  const blockLinear = blockParams(shape);
  const total = totalParams(c, blockLinear);
  const windows = heldOutWindows(model, heldOutStories);
  const engine = await TextEngine.create(ort, 'wasm', model);
  const full = engine.plan;
  const measure = async (method: string, target: number, detail: string) => {
    const plan = engine.plan;
    const kept = plan.layers.reduce((n, l) => n + (plan.width ? blockParams(shape, plan.width.kvHeads[l]!.length, plan.width.ffn[l]!.length) + 2 * c.dim : blockLinear + 2 * c.dim), 0);
    const paramsRemoved = (c.nLayers * (blockLinear + 2 * c.dim) - kept) / total;
    const perplexity = await heldOutPerplexity(engine, windows);
    const { wall: tps, cpu: cpuTps } = await decodeSpeed(engine, c.bosTokenId, reps);
    rows.push({ model: id, method, target, paramsRemoved, perplexity, tps, cpuTps, plan, detail });
    log(`${id} ${method} @${(target * 100).toFixed(1)}%: removed ${(paramsRemoved * 100).toFixed(1)}% ppl ${perplexity.toFixed(3)} ${tps.toFixed(0)} tok/s, ${cpuTps.toFixed(0)} tok per CPU-s ${detail}`);
  };
  // V8 and WASM warm-up before the first measured plan (dense), as bench/prune-report.ts does; the
  // dense plan is measured again last and the better of its two runs kept.
  for (let i = 0; i < 3; i++) await decodeSpeed(engine, c.bosTokenId, reps);
  await measure('dense', 0, '');
  dense[id] = { perplexity: rows.at(-1)!.perplexity, tps: rows.at(-1)!.tps, cpuTps: rows.at(-1)!.cpuTps, params: total };

  const scores = await engine.scoreBlocks(DEFAULT_CALIBRATION_TEXT);
  const depthFractions: number[] = [];
  for (let k = 1; k <= 4; k++) {
    const fraction = (k * (blockLinear + 2 * c.dim)) / total;
    depthFractions.push(fraction);
    const seen = new Set<string>();
    for (const criterion of ['influence', 'angular', 'perplexity'] as PruneCriterion[]) {
      const { plan, removed } = choosePrunePlan(scores, { remove: k, criterion });
      if (seen.has(plan.layers.join(','))) continue;
      seen.add(plan.layers.join(','));
      await engine.setPlan(plan);
      await measure(`depth`, fraction, `${criterion}: removed blocks ${removed.join(', ')}`);
    }
  }
  for (const fraction of [0.1, 0.2, 0.3, 0.4, 0.5, ...depthFractions]) {
    // The fraction of the whole model, as a fraction of what width pruning can touch (the blocks' linears).
    const ratio = (fraction * total) / (c.nLayers * blockLinear);
    for (const method of ['flap', 'wanda-sp'] as WidthMethod[]) {
      await engine.setPlan(full);
      const out = await engine.pruneWidth({ ratio, method });
      const w = out.width;
      const detail = `KV heads kept ${full.layers.map((l) => w.kvHeads[l]!.length).join('/')}; FFN kept ${full.layers.map((l) => w.ffn[l]!.length).join('/')}`;
      await measure(method, fraction, detail);
      if (method === 'flap') {
        await engine.setPlan({ ...engine.plan, width: { ...w, bias: false } });
        await measure('flap (no bias)', fraction, detail);
        // FLAP's released code standardizes the scores within each block (width-select.ts).
        await engine.setPlan(full);
        const perBlock = (await engine.pruneWidth({ ratio, method, standardization: 'block' })).width;
        await measure('flap (per-block std)', fraction, `KV heads kept ${full.layers.map((l) => perBlock.kvHeads[l]!.length).join('/')}; FFN kept ${full.layers.map((l) => perBlock.ffn[l]!.length).join('/')}`);
      }
    }
  }
  // The mix `lm.compress({ target })` picks: the lowest calibration perplexity of up to 4 depth / width splits with the same block parameters.
  for (const fraction of [0.2, 0.3, 0.4, 0.5, ...depthFractions]) {
    await engine.setPlan(full);
    const ratio = (fraction * total) / (c.nLayers * blockLinear);
    const result = await pruneToTarget(engine, { target: { params: 1 - ratio } });
    const tried = result.candidates.map((cand, i) => `${i === result.chosen ? '**' : ''}${cand.removeBlocks} blocks + ${(cand.width * 100).toFixed(0)}% width: ${cand.perplexity.toFixed(3)}${i === result.chosen ? '**' : ''}`).join('; ');
    await measure('mix (target)', fraction, `calibration ppl of the splits tried: ${tried}`);
  }
  await engine.setPlan(full);
  const again = await decodeSpeed(engine, c.bosTokenId, reps);
  const first = rows.find((r) => r.model === id && r.method === 'dense')!;
  first.tps = Math.max(first.tps, again.wall);
  first.cpuTps = Math.max(first.cpuTps, again.cpu);
  dense[id]!.tps = first.tps;
  dense[id]!.cpuTps = first.cpuTps;
  await engine.dispose();
}

// ---- report ----
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const f3 = (x: number) => x.toFixed(3);
const md: string[] = [];
md.push(WIDTH_START, '## Width pruning (FLAP, Wanda-sp) against depth pruning at equal parameters', '');
md.push('```', `npx tsx bench/width-report.ts --reps ${reps}`, '```', '');
md.push(
  `Generated ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (Node ${process.version}, ${cpus().length} cores shared, load ${loadStart.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}). Everything through the engine's compiled graphs (onnxruntime-web WASM in Node, 1 thread): calibration statistics through the linear-input probe graphs on the built-in calibration text (${'`workers/text/calibration.ts`'}), held-out perplexity teacher-forced one token per step on the same six stories as the depth tables above, decode tok/s = best of ${reps} greedy 128-token runs after a warm-up (ratios within a model matter, not absolutes, on this shared machine).`,
  '',
  ...(Math.max(loadStart, loadavg()[0]!) > cpus().length ? [`- **Caveat: the load average exceeded the ${cpus().length} cores during this run**: wall tok/s are noise (other jobs took the CPU between and within runs). "tok per CPU-s" counts only this process's CPU time and the speed-up column uses it, but a shared core also runs slower per CPU-second: compare the two models' dense rows (the same shape) to see how much noise is left before reading any speed-up. The perplexities are unaffected.`] : []),
  '- **params removed**: of the whole model (embedding, norms and blocks). Width pruning removes only block linears, so a width ratio r of the blocks is r × (block linears / total) of the model; each method is run at the fraction a depth cut removes (1, 2, 3, 4 blocks) so the comparison is at equal parameters, and at 10/20/30/40/50 %.',
  '- **depth**: one-shot block scores (`scoreBlocks`), each criterion (influence, angular, perplexity without the block); rows per distinct plan. The summary takes the best held-out result among criteria, i.e. with hindsight that favours depth.',
  '- **mix (target)**: `lm.compress({ target: { params } })` (workers/text/target-prune.ts) at the same block parameters: up to 4 splits of k blocks removed by depth pruning (perplexity criterion) plus FLAP on the rest, the lowest calibration perplexity (on the built-in calibration text, not the held-out stories) kept; the kept column lists every split tried, the chosen in bold.',
  '- **flap**: WIFV scores (variance of the o_proj / down_proj input channel × squared weight norm; attention scores squared), standardized per module kind over all blocks, KV groups scored by their channels\' mean, ranked across all blocks (adaptive ratios), with the compensation biases (the default of `lm.prune({ width, method: \'flap\' })`); **flap (no bias)** the same cut without them; **flap (per-block std)** standardized within each block as FLAP\'s released code does (`standardization: \'block\'`), with biases; **wanda-sp**: |W|·‖x‖ summed per group, the same share of parameters cut from every block, no biases.',
  '',
);
const models = [...new Set(rows.map((r) => r.model))];
md.push('### Summary: held-out perplexity at equal parameters removed', '');
md.push('| model | params removed | depth (best criterion) | flap | flap (no bias) | flap (per-block std) | wanda-sp | mix (target) |', '|---|---|---|---|---|---|---|---|');
for (const m of models) {
  const d = dense[m]!;
  md.push(`| ${m} | 0 | ${f3(d.perplexity)} (dense) | | | | | |`);
  const targets = [...new Set(rows.filter((r) => r.model === m && r.method !== 'dense').map((r) => r.target))].sort((a, b) => a - b);
  for (const t of targets) {
    const at = (method: string) => rows.filter((r) => r.model === m && r.method === method && r.target === t);
    const cell = (method: string) => {
      const rs = at(method);
      if (rs.length === 0) return '—';
      const best = Math.min(...rs.map((r) => r.perplexity));
      return `${f3(best)} (${((best / d.perplexity - 1) * 100).toFixed(1)}%)`;
    };
    md.push(`| ${m} | ${pct(t)} | ${cell('depth')} | ${cell('flap')} | ${cell('flap (no bias)')} | ${cell('flap (per-block std)')} | ${cell('wanda-sp')} | ${cell('mix (target)')} |`);
  }
}
md.push('', '### Every run', '');
md.push('| model | method | target | params removed | held-out ppl | vs dense | decode tok/s (wall) | tok per CPU-s | speed-up (CPU) | kept |', '|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const d = dense[r.model]!;
  md.push(`| ${r.model} | ${r.method} | ${pct(r.target)} | ${pct(r.paramsRemoved)} | ${f3(r.perplexity)} | ${((r.perplexity / d.perplexity - 1) * 100).toFixed(1)}% | ${r.tps.toFixed(0)} | ${r.cpuTps.toFixed(0)} | ${(r.cpuTps / d.cpuTps).toFixed(2)}x | ${r.detail} |`);
}
md.push('', WIDTH_END);

const existing = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
const start = existing.indexOf(WIDTH_START);
const end = existing.indexOf(WIDTH_END);
const before = start >= 0 ? existing.slice(0, start) : existing.trimEnd() + '\n\n';
const after = start >= 0 && end > start ? existing.slice(end + WIDTH_END.length) : '\n';
writeFileSync(outPath, before + md.join('\n') + after);
log(`wrote ${outPath}`);
const json = {
  rows: rows.map((r) => ({
    model: r.model,
    method: r.method,
    params_removed: Number(r.paramsRemoved.toFixed(4)),
    perplexity: Number(r.perplexity.toFixed(4)),
    perplexity_ratio: Number((r.perplexity / dense[r.model]!.perplexity).toFixed(4)),
    decode_speedup: Number((r.cpuTps / dense[r.model]!.cpuTps).toFixed(3)),
    // Not a file: what the kept parameters weigh in fp32 (a width or depth cut is stored fp32 unless compressed).
    bytes: Math.round((dense[r.model]!.params * (1 - r.paramsRemoved)) * 4),
    bytes_basis: 'fp32 parameters kept',
    weights: 'f32',
    target: Number(r.target.toFixed(4)),
    kept: r.detail,
  })),
};
console.log(JSON.stringify(json));
