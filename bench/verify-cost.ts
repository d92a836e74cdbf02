/**
 * Self-speculation at size: what a verify pass costs against the positions it covers, per shape,
 * and the speed-up that cost predicts with the acceptance measured on the project's LayerSkip
 * model.
 *
 *   npx tsx bench/verify-cost.ts [--shapes smollm2-135m,smollm2-360m] [--weights f32] [--exits 0.25,0.5,0.75] [--rounds 7] [--context 64] [--clock cpu|wall] [--json]
 *
 * Node, onnxruntime-web WASM (the same wasm build the browser workers load), one thread, synthetic
 * weights in the published shapes (models/synthetic/, generated into public/models/ when absent).
 * Per shape and exit E (a fraction of the layers, rounded), after a `--context`-token prefill:
 *   full_ms      one decode step of the plain full-depth plan (one graph): plain decoding's cost
 *   draft_ms     one draft step: the layers before the exit and the exit head
 *   verify_ms[S] the layers after the exit over S = 1..8 drafted positions (their logits all
 *                 fetched), the caches truncated back after each
 * each the median of `--rounds` interleaved repetitions. The prediction is draft-length.ts's model
 * (Leviathan et al. eq. 1 with the measured verify curve):
 *   speedup(a, d) = tokens(a, d) * full / ((d + 1) * draft + verify(d + 1))
 * maximized over d = 1..7, at the acceptance stories-layerskip reaches at the same exit fraction
 * (bench/RESULTS.md, bench:speculate, WASM, draft 2: exit 2/8 0.615, 4/8 0.714, 6/8 0.831), and
 * the break-even acceptance where the best d gives exactly 1. Random weights accept nothing
 * useful, so their own acceptance is not measured: only their costs are real. WebGPU is not
 * measured (no GPU here: SwiftShader's costs say nothing about a GPU's).
 * Last line: `{ "rows": [{ shape, synthetic, weights, backend, threads, layers, exit, full_ms,
 * draft_ms, verify_ms: [S=1..8], acceptance_layerskip, best_draft, predicted_speedup, break_even_acceptance }] }`.
 */
import { existsSync, openAsBlob, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../models/local.ts';
import { prepareWeightsFrom } from '../models/llama/prepare.ts';
import { fullPlan, type LlamaPlan, type WeightsSetting } from '../models/llama/types.ts';
import { writeSyntheticFolder } from '../models/synthetic/folder.ts';
import { isShapeId, publishedShape, SHAPES } from '../models/synthetic/shapes.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { bestDraft } from '../workers/text/draft-length.ts';
import { openTextModelFromHf } from '../workers/text/model.ts';
import { PlanRunner } from '../workers/text/runner.ts';

const { values } = parseArgs({
  options: {
    shapes: { type: 'string', default: 'smollm2-135m' },
    weights: { type: 'string', default: 'f32' },
    exits: { type: 'string', default: '0.25,0.5,0.75' },
    rounds: { type: 'string', default: '7' },
    context: { type: 'string', default: '64' },
    clock: { type: 'string', default: 'cpu' },
    json: { type: 'boolean', default: false },
  },
});

/** stories-layerskip's acceptance at exit 2, 4, 6 of 8 layers (bench:speculate, WASM, draft 2). */
const LAYERSKIP_ACCEPTANCE: [fraction: number, acceptance: number][] = [
  [0.25, 0.615],
  [0.5, 0.714],
  [0.75, 0.831],
];
const MAX_S = 8;
const DRAFTS = [1, 2, 3, 4, 5, 6, 7];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const r3 = (x: number) => Math.round(x * 1000) / 1000;

/** Linear interpolation of the LayerSkip acceptance at an exit fraction (clamped to the measured range). */
function acceptanceAt(fraction: number): number {
  const pts = LAYERSKIP_ACCEPTANCE;
  if (fraction <= pts[0]![0]) return pts[0]![1];
  for (let i = 1; i < pts.length; i++) {
    const [x0, y0] = pts[i - 1]!;
    const [x1, y1] = pts[i]!;
    if (fraction <= x1) return y0 + ((y1 - y0) * (fraction - x0)) / (x1 - x0);
  }
  return pts[pts.length - 1]![1];
}

/** The acceptance at which the best draft length gives exactly 1x (bisection; 1 when even full acceptance does not pay). */
function breakEven(draftCost: number, verifyCost: (s: number) => number): number {
  if (bestDraft(0.999, DRAFTS, draftCost, verifyCost).speedup < 1) return 1;
  let lo = 0;
  let hi = 0.999;
  for (let i = 0; i < 40; i++) {
    const mid = (lo + hi) / 2;
    if (bestDraft(mid, DRAFTS, draftCost, verifyCost).speedup < 1) lo = mid;
    else hi = mid;
  }
  return hi;
}

/**
 * Milliseconds of `fn`: the process's CPU time by default (`--clock cpu`), which a loaded machine's
 * scheduling does not inflate (onnxruntime runs one thread here, so CPU time is its compute time;
 * memory-bandwidth contention still shows), or wall time (`--clock wall`).
 */
async function timed(fn: () => Promise<unknown>): Promise<number> {
  if (values.clock === 'wall') {
    const t0 = performance.now();
    await fn();
    return performance.now() - t0;
  }
  const c0 = process.cpuUsage();
  await fn();
  const c = process.cpuUsage(c0);
  return (c.user + c.system) / 1000;
}

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const rows = [];
const setting: WeightsSetting | undefined = values.weights === 'f32' ? undefined : { linear: values.weights as 'q8' | 'q4' };
const rounds = Number(values.rounds);
const contextLength = Number(values.context);

for (const shape of values.shapes.split(',')) {
  if (!isShapeId(shape)) throw new Error(`unknown shape ${shape}; one of ${Object.keys(SHAPES).join(', ')}`);
  const dir = join(REPO_ROOT, 'public', 'models', `synthetic-${shape}`);
  if (!existsSync(join(dir, 'config.json'))) writeSyntheticFolder(publishedShape(shape), dir, { seed: 0 }); // bench:scale's seed
  const files = Object.fromEntries(await Promise.all(readdirSync(dir).filter((n) => /\.(json|safetensors)$/.test(n)).map(async (n) => [n, await openAsBlob(join(dir, n))] as const)));
  const model = await openTextModelFromHf(files);
  const c = model.config;
  const weights = await prepareWeightsFrom(c, model.weights, setting ? { weights: setting, backend: 'wasm' } : {});
  const context = Array.from({ length: contextLength }, (_, i) => 100 + ((i * 7919) % 1000));

  // Plain decoding's step: the one-graph full plan, kept beside each exit plan's runner and timed
  // in the same rounds (interleaved), so a drift in machine load moves both sides alike.
  const full = await PlanRunner.compile(ort, 'wasm', weights, fullPlan(c), 'onnx');
  await full.step(context);
  const fullAt = full.position;

  for (const fraction of values.exits.split(',').map(Number)) {
    const exit = Math.min(c.nLayers - 1, Math.max(1, Math.round(fraction * c.nLayers)));
    const plan: LlamaPlan = { ...fullPlan(c), exit };
    const runner = await PlanRunner.compile(ort, 'wasm', weights, plan, 'onnx');
    await runner.step(context);
    const start = runner.position;
    const draftTimes: number[] = [];
    const fullTimes: number[] = [];
    const verifyTimes: number[][] = Array.from({ length: MAX_S }, () => []);
    // Round 0 warms both runners (first-run allocations) and is not counted.
    for (let r = -1; r < rounds; r++) {
      const fullMs = await timed(() => full.step([200 + r + 1]));
      if (r >= 0) fullTimes.push(fullMs);
      await full.truncate(fullAt);
      // Draft S tokens (timing each), then verify all S positions; truncate back for the next S.
      for (let S = 1; S <= MAX_S; S++) {
        const hidden = new Float32Array(S * c.dim);
        for (let s = 0; s < S; s++) {
          let h: Float32Array | undefined;
          const ms = await timed(async () => ({ hidden: h } = await runner.draftStep(300 + s)));
          if (S === 1 && r >= 0) draftTimes.push(ms);
          hidden.set(h!, s * c.dim);
        }
        const verifyMs = await timed(() => runner.verify(hidden, S));
        if (r >= 0) verifyTimes[S - 1]!.push(verifyMs);
        await runner.truncate(start);
      }
    }
    await runner.release();
    const fullMs = median(fullTimes);
    const draftMs = median(draftTimes);
    const verifyMs = verifyTimes.map(median);
    // In units of one full step, as draft-length.ts takes them.
    const verifyCost = (s: number) => verifyMs[Math.min(s, MAX_S) - 1]! / fullMs;
    const acceptance = acceptanceAt(exit / c.nLayers);
    const best = bestDraft(acceptance, DRAFTS.filter((d) => d + 1 <= MAX_S), draftMs / fullMs, verifyCost);
    const row = {
      shape,
      synthetic: true,
      weights: values.weights,
      backend: 'wasm',
      threads: 1,
      layers: c.nLayers,
      exit,
      load_avg_1m: r3(loadavg()[0]!),
      context: contextLength,
      clock: values.clock,
      full_ms: r3(fullMs),
      draft_ms: r3(draftMs),
      verify_ms: verifyMs.map(r3),
      acceptance_layerskip: r3(acceptance),
      best_draft: best.draft,
      predicted_speedup: r3(best.speedup),
      break_even_acceptance: r3(breakEven(draftMs / fullMs, verifyCost)),
    };
    console.error(`[verify-cost] ${shape} exit ${exit}/${c.nLayers} (load average ${loadavg()[0]!.toFixed(1)}): full ${fullMs.toFixed(2)} ms, draft ${draftMs.toFixed(2)} ms, verify ${verifyMs.map((v) => v.toFixed(1)).join(' ')} ms; at acceptance ${acceptance.toFixed(3)} best d = ${best.draft}, ${best.speedup.toFixed(2)}x; break-even acceptance ${row.break_even_acceptance}`);
    rows.push(row);
  }
  await full.release();
}
console.log(values.json ? JSON.stringify({ rows }) : JSON.stringify({ rows }, null, 2));
