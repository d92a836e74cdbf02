/**
 * Depth-pruning benchmark in headless Chromium: for each model and k = 0..L-2 blocks removed
 * (one-shot, by the on-device perplexity criterion on the built-in calibration text, first and
 * last block kept), the held-out perplexity of the pruned plan and its greedy decode speed
 * against the full-depth model. The full model decodes in its own warmed worker, interleaved with
 * the pruned one (alternating which goes first), so speed-ups are ratios measured in the same
 * minute; k = 0 is the control (the same plan in both workers), so its ratio shows the
 * measurement's own bias. One WASM thread.
 */
import { Whittle, type TextModel } from 'whittle';
import { HELD_OUT_STORIES } from '../../demos/shared/held-out-stories.ts';
import { log, medianBy, report, warmUp } from './page.ts';

const params = new URLSearchParams(location.search);
const quick = params.has('quick');
const models = (params.get('models') ?? 'stories260K,stories-layerskip,stories-baseline').split(',');

const PROMPTS = ['Once upon a time', 'The little boat', 'Sam and Mia went to the beach.'];

async function decodeTokS(lm: TextModel, maxTokens: number): Promise<number> {
  let tokens = 0;
  let ms = 0;
  for (const p of PROMPTS) {
    const d = await lm.complete(p, { maxTokens, greedy: true, stopTokens: [] });
    tokens += d.tokens.length - 1;
    ms += d.stats.decodeMs;
  }
  return Math.round((tokens / ms) * 1000 * 10) / 10;
}

async function heldOutPerplexity(lm: TextModel): Promise<number> {
  // Token-weighted mean NLL over the paragraphs -> one perplexity.
  let nll = 0;
  let n = 0;
  for (const text of HELD_OUT_STORIES) {
    const r = await lm.perplexity(text);
    nll += Math.log(r.perplexity) * r.predictions;
    n += r.predictions;
  }
  return Math.round(Math.exp(nll / n) * 1000) / 1000;
}

async function runModel(model: string) {
  const w = await Whittle.create({ backend: 'wasm', maxThreads: 1, storeName: 'bench-prune' });
  const full = await w.text(model);
  const pruned = await w.text(model);
  const L = full.info.nLayers;
  const maxTokens = quick ? 48 : 128;
  const reps = quick ? 1 : 5;
  await warmUp(full, quick ? 256 : 1024, PROMPTS.slice(0, 1));
  const fullPpl = await heldOutPerplexity(full);
  const rows = [];
  for (let k = 0; k <= L - 2; k++) {
    const t0 = performance.now();
    const result = await pruned.prune({ remove: k, criterion: 'perplexity' });
    const pruneMs = Math.round(performance.now() - t0);
    await warmUp(pruned, quick ? 256 : 1024, PROMPTS.slice(0, 1));
    const pairs: { full: number; pruned: number; speedup: number }[] = [];
    for (let r = 0; r < reps; r++) {
      // Alternate which worker goes first, so neither always runs right after the other's burst.
      let f = 0;
      let p = 0;
      if (r % 2 === 0) {
        f = await decodeTokS(full, maxTokens);
        p = await decodeTokS(pruned, maxTokens);
      } else {
        p = await decodeTokS(pruned, maxTokens);
        f = await decodeTokS(full, maxTokens);
      }
      pairs.push({ full: f, pruned: p, speedup: Math.round((p / f) * 100) / 100 });
    }
    // The median rep's pair: its speeds and its ratio belong together.
    const median = medianBy(pairs, (x) => x.speedup);
    const ppl = await heldOutPerplexity(pruned);
    const row = {
      model,
      k,
      removed: result.removed,
      layers: result.plan.layers,
      perplexity: ppl,
      perplexity_ratio: Math.round((ppl / fullPpl) * 1000) / 1000,
      decode_tok_s: median.pruned,
      full_decode_tok_s: median.full,
      speedup: median.speedup,
      speedup_per_rep: pairs.map((x) => x.speedup),
      prune_ms: pruneMs,
    };
    log(JSON.stringify(row));
    rows.push(row);
  }
  full.dispose();
  pruned.dispose();
  const quarter = rows.find((r) => r.k === Math.round(L / 4))!;
  return { model, blocks: L, full_perplexity: fullPpl, at_25_percent: { k: quarter.k, speedup: quarter.speedup, perplexity_ratio: quarter.perplexity_ratio }, rows };
}

async function main() {
  const perModel = [];
  for (const model of models) perModel.push(await runModel(model));
  const first = perModel[0]!;
  return { benchmark: 'prune', backend: 'wasm', criterion: 'perplexity', model: first.model, at_25_percent: first.at_25_percent, models: perModel };
}

report(main);
