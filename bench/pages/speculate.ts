/**
 * Self-speculative decoding benchmark: full-depth greedy vs self-speculative greedy on the same
 * model, the same worker and the same held-out prompts (story openings that are neither in the
 * recipe's training stories nor in the calibration text), one WASM thread. Full and speculative
 * passes interleave (alternating which goes first), so machine noise hits both; decode tok/s =
 * tokens after the first / decode time, summed over the prompts; each row is the median rep. `identical_greedy` compares every prompt's tokens.
 *
 * Configurations: 'auto' (exit chosen by calibration, draft adapted per round) is the headline;
 * a sweep over exits with fixed and adaptive drafts shows where the time goes. WebGPU
 * (SwiftShader here: a CPU emulation) gets one short configuration.
 */
import { Whittle, type SpeculateOptions, type SpeculationStats, type TextModel } from 'whittle';
import { log, medianBy, report, warmUp } from './page.ts';
import { HELD_OUT_PROMPTS } from '../../models/llama/testing/held-out-prompts.ts';

const params = new URLSearchParams(location.search);
const quick = params.has('quick');
const models = (params.get('models') ?? 'stories-layerskip,stories-baseline').split(',');

/** The first 8 held-out story openings (the speculation tests use all 12). */
const PROMPTS = HELD_OUT_PROMPTS.slice(0, 8);

interface Pass {
  tokens: number[][];
  decodeTokS: number;
  spec?: { acceptance: number; tokensPerRound: number; meanDraft: number; exit: number; draft: number | 'auto'; calibration?: SpeculationStats['calibration'] };
}

async function pass(lm: TextModel, maxTokens: number, prompts: string[], speculate?: SpeculateOptions): Promise<Pass> {
  let tokens = 0;
  let ms = 0;
  let drafted = 0;
  let accepted = 0;
  let rounds = 0;
  let produced = 0;
  let last: SpeculationStats | undefined;
  const out: number[][] = [];
  for (const prompt of prompts) {
    const done = await lm.complete(prompt, { maxTokens, greedy: true, stopTokens: [], ...(speculate ? { speculate } : {}) });
    out.push(done.tokens);
    tokens += done.tokens.length - 1;
    ms += done.stats.decodeMs;
    const s = done.stats.speculation;
    if (s) {
      drafted += s.drafted;
      accepted += s.accepted;
      rounds += s.rounds;
      produced += s.tokensPerRound * s.rounds;
      last = s;
    }
  }
  const result: Pass = { tokens: out, decodeTokS: Math.round((tokens / ms) * 1000 * 10) / 10 };
  if (last) {
    result.spec = {
      acceptance: Math.round((accepted / drafted) * 1000) / 1000,
      tokensPerRound: Math.round((produced / rounds) * 100) / 100,
      meanDraft: Math.round((drafted / rounds) * 100) / 100,
      exit: last.exit,
      draft: last.draft,
      ...(last.calibration ? { calibration: last.calibration } : {}),
    };
  }
  return result;
}

const same = (a: number[][], b: number[][]) => JSON.stringify(a) === JSON.stringify(b);

type Row = Awaited<ReturnType<typeof measure>>;

/**
 * Full depth runs in its own worker on the single-graph plan (its best case: one session.run per
 * token), speculation in another on the plan split at the exit; both warmed on their own
 * sessions before anything is timed.
 */
async function measure(model: string, backend: 'wasm' | 'webgpu', full: TextModel, spec: TextModel, config: SpeculateOptions, maxTokens: number, prompts: string[], reps: number, warmSteps: number) {
  await warmUp(spec, warmSteps, PROMPTS, { speculate: config }); // compiles the plan with this exit on the first call
  const pairs: { full: Pass; spec: Pass; speedup: number }[] = [];
  let identical = true;
  for (let r = 0; r < reps; r++) {
    // Alternate which side goes first, so neither always runs right after the other's burst.
    const first = r % 2 === 0 ? await pass(full, maxTokens, prompts) : await pass(spec, maxTokens, prompts, config);
    const second = r % 2 === 0 ? await pass(spec, maxTokens, prompts, config) : await pass(full, maxTokens, prompts);
    const [f, s] = r % 2 === 0 ? [first, second] : [second, first];
    identical &&= same(f.tokens, s.tokens);
    pairs.push({ full: f, spec: s, speedup: Math.round((s.decodeTokS / f.decodeTokS) * 100) / 100 });
  }
  // Report the median rep's pair: its speeds and its ratio belong together.
  const median = medianBy(pairs, (p) => p.speedup);
  const sp = median.spec.spec!;
  return {
    model,
    backend,
    prompts: prompts.length,
    new_tokens: maxTokens,
    full: { decode_tok_s: median.full.decodeTokS },
    speculative: {
      decode_tok_s: median.spec.decodeTokS,
      acceptance: sp.acceptance,
      tokens_per_round: sp.tokensPerRound,
      mean_draft: sp.meanDraft,
      exit: sp.exit,
      draft: sp.draft,
      ...(config.exit === 'auto' && sp.calibration ? { exit_chosen_by: 'calibration', predicted_speedup: Math.round(sp.calibration.predictedSpeedup * 100) / 100 } : {}),
    },
    speedup: median.speedup,
    speedup_per_rep: pairs.map((p) => p.speedup),
    identical_greedy: identical,
  };
}

async function runModel(model: string, backend: 'wasm' | 'webgpu'): Promise<Row[]> {
  const w = await Whittle.create({ backend, maxThreads: 1, storeName: `bench-spec-${backend}` });
  const full = await w.text(model);
  const spec = await w.text(model);
  const gpu = backend === 'webgpu';
  const maxTokens = gpu ? 12 : quick ? 48 : 128;
  const prompts = gpu ? PROMPTS.slice(0, 1) : quick ? PROMPTS.slice(0, 3) : PROMPTS;
  const reps = gpu ? 1 : quick ? 1 : 3;
  const warmSteps = gpu ? 0 : quick ? 128 : 512;
  const exits = gpu ? [] : quick ? [2] : [1, 2, 4, 6];
  const configs: SpeculateOptions[] = gpu ? [{ exit: 4, draft: 2 }] : [{ exit: 'auto', draft: 'auto' }, ...exits.flatMap((exit) => [{ exit, draft: 2 }, { exit, draft: 'auto' as const }])];
  await warmUp(full, gpu ? 0 : quick ? 256 : 1024, PROMPTS);
  const rows: Row[] = [];
  for (const config of configs) {
    const row = await measure(model, backend, full, spec, config, maxTokens, prompts, reps, warmSteps);
    log(JSON.stringify(row));
    rows.push(row);
  }
  full.dispose();
  spec.dispose();
  return rows;
}

async function main() {
  const runs: Row[] = [];
  for (const model of models) runs.push(...(await runModel(model, 'wasm')));
  if (!quick && (navigator as Navigator & { gpu?: GPU }).gpu) runs.push(...(await runModel(models[0]!, 'webgpu')));
  const headline = runs[0]!;
  const bestFixed = (model: string) => runs.filter((r) => r.model === model && r.backend === 'wasm').reduce((a, b) => (b.speedup > a.speedup ? b : a));
  return {
    benchmark: 'speculate',
    model: headline.model,
    backend: headline.backend,
    full: headline.full,
    speculative: headline.speculative,
    speedup: headline.speedup,
    identical_greedy: runs.every((r) => r.identical_greedy),
    best_per_model: models.map((m) => ({ model: m, exit: bestFixed(m).speculative.exit, draft: bestFixed(m).speculative.draft, speedup: bestFixed(m).speedup, acceptance: bestFixed(m).speculative.acceptance })),
    runs,
  };
}

report(main);
