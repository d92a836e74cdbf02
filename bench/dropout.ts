/**
 * Dropout decoding evaluation (issue #15): a noisy-context task in Node, onnxruntime-web WASM,
 * one thread (the same engine and graphs a WASM worker runs; Chromium is not needed for quality
 * numbers, and on a shared machine its timings would be noisier still).
 *
 *   npm run bench:dropout -- [--json] [--quick] [--stories N] [--models stories260K,stories-layerskip]
 *                            [--members 3] [--rates 0.3,0.5,0.7] [--min-rate 0.1] [--top-k 5] [--speed-reps 3]
 *
 * Task: held-out stories (sampled from stories260K by TextEngine at temperature 1 with seeds
 * 301.., a different generator and seeds from the LayerSkip recipe's corpus, and not the
 * calibration text), each cut into a context of CONTEXT tokens after BOS and its true
 * continuation. The context is corrupted: CONTEXT * f of its tokens replaced by uniformly random
 * ids (f = 10, 20, 30%), or a distractor sentence (another story's first sentence) inserted
 * after the sentence end nearest its middle; 'none' keeps it clean. Methods, all greedy, with
 * the whole context marked: plain greedy; dropout decoding with guidance 'uniform' (the same
 * members, rates and expected drops, but no uncertainty guidance: the ablation); dropout
 * decoding. Measured per method:
 *   agreement     token accuracy of the first CONTINUATION generated tokens against the greedy
 *                 continuation of the CLEAN context (position by position)
 *   nll           mean NLL (nats/token) of the true continuation, teacher-forced, under the
 *                 method's per-step distribution (for the ensembles: the mean of the members'
 *                 softmax, members that dropped nothing counting as the base pass)
 *   decode_tok_s  generated tokens after the first / decode time, summed over the stories
 *                 (32-token generations on a shared machine: noisy; see `speed` below)
 * Speed, separately: per model, greedy and dropout decoding of SPEED_TOKENS tokens after each of
 * the first 3 clean contexts, interleaved, `--speed-reps` rounds; the median round's decode tok/s.
 * JSON: { rows: [{ model, corruption, method, agreement, nll, decode_tok_s, ... }], goals, ... }.
 */
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createRng } from '../core/random.ts';
import type { GenerateOptions } from '../core/text-types.ts';
import { readLocalModelFile } from '../models/local.ts';
import { prepareWeights } from '../models/llama/prepare.ts';
import { fullPlan } from '../models/llama/types.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { DropoutEnsemble } from '../workers/text/dropout-decode.ts';
import { prefillUncertainty } from '../workers/text/dropout-uncertainty.ts';
import { resolveDropout } from '../workers/text/dropout-members.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf, textModelFromLlama2c, type TextModel } from '../workers/text/model.ts';
import { PlanRunner } from '../workers/text/runner.ts';
import { argmax, softmax } from '../workers/text/sampler.ts';
import { localHfFolder } from './local-hf-folder.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    stories: { type: 'string' },
    models: { type: 'string' },
    members: { type: 'string' },
    rates: { type: 'string' },
    'min-rate': { type: 'string' },
    'top-k': { type: 'string' },
    'speed-reps': { type: 'string' },
  },
});
const MEMBERS = Number(values.members ?? 3);
const RATES = values.rates?.split(',').map(Number);
const MIN_RATE = Number(values['min-rate'] ?? 0.1);
const TOP_K = Number(values['top-k'] ?? 5);
const SPEED_REPS = Number(values['speed-reps'] ?? (values.quick ? 1 : 3));
const SPEED_TOKENS = 128;
/** The dropout settings every method run uses (resolveDropout fills `rates` for MEMBERS when not given). */
const SETTINGS = { members: MEMBERS, ...(RATES ? { rates: RATES } : {}), minRate: MIN_RATE, topK: TOP_K };
const CONTEXT = 64;
const CONTINUATION = 32;
const STORIES = Number(values.stories ?? (values.quick ? 3 : 10));
const CORRUPTIONS = ['none', 'random-10', 'random-20', 'random-30', 'distractor'] as const;
type Corruption = (typeof CORRUPTIONS)[number];
const METHODS = ['greedy', 'uniform-dropout', 'dropout-decoding'] as const;
type Method = (typeof METHODS)[number];
const DROPOUT_SEED = 15;

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const log = (...a: unknown[]) => console.error(new Date().toISOString().slice(11, 19), ...a);
const loadStart = loadavg()[0]!;

function hfModel(id: string): TextModel | null {
  const f = localHfFolder(id);
  return f ? textModelFromHf(f.files) : null;
}

const wanted = values.models?.split(',') ?? ['stories260K', 'stories-layerskip', 'stories-baseline'];
const models: { id: string; model: TextModel }[] = [];
for (const id of wanted) {
  const model = id === 'stories260K' ? textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')) : hfModel(id);
  if (model) models.push({ id, model });
  else log(`${id}: no weights found, skipped`);
}

// Held-out stories: stories260K samples, long enough for context + continuation in every tokenizer.
const stories260K = textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin'));
const sampler = await TextEngine.create(ort, 'wasm', stories260K);
const stories: string[] = [];
for (let seed = 301; stories.length < STORIES + 1 && seed < 301 + 20 * (STORIES + 1); seed++) {
  for await (const ev of sampler.generate([stories260K.config.bosTokenId], { maxTokens: 220, temperature: 1, seed })) {
    if (ev.type !== 'done') continue;
    const text = ev.text.trim();
    if (models.every(({ model }) => model.tokenizer.encode(text).length >= CONTEXT + CONTINUATION + 4)) stories.push(text);
  }
}
await sampler.dispose();
log(`held-out: ${stories.length} stories (the last only lends its first sentence as a distractor)`);

/** The context with its corruption; BOS stays first. */
function corrupt(context: number[], kind: Corruption, model: TextModel, distractorText: string, seed: number): number[] {
  if (kind === 'none') return [...context];
  const rng = createRng(seed);
  if (kind === 'distractor') {
    const sentence = ' ' + (distractorText.match(/^[^.!?]*[.!?]/)?.[0] ?? distractorText.slice(0, 60)).trim();
    const insert = model.tokenizer.encode(sentence);
    // After the sentence end nearest the middle (else the middle itself).
    let at = Math.floor(context.length / 2);
    let best = Infinity;
    for (let p = 1; p < context.length - 1; p++) {
      if (/[.!?]\s*$/.test(model.tokenizer.decode([context[p]!])) && Math.abs(p + 1 - context.length / 2) < best) {
        best = Math.abs(p + 1 - context.length / 2);
        at = p + 1;
      }
    }
    return [...context.slice(0, at), ...insert, ...context.slice(at)];
  }
  const f = Number(kind.split('-')[1]) / 100;
  const out = [...context];
  const positions = Array.from({ length: context.length - 1 }, (_, i) => i + 1);
  for (let i = positions.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [positions[i], positions[j]] = [positions[j]!, positions[i]!];
  }
  const V = model.config.vocabSize;
  for (const p of positions.slice(0, Math.round(f * (context.length - 1)))) out[p] = 3 + Math.floor(rng() * (V - 3)); // not BOS/EOS/unk
  return out;
}

interface Cell {
  agreement: number[];
  nll: number[];
  tokens: number;
  decodeMs: number;
  ensembleSteps: number;
  steps: number;
  changedByVote: number;
  drops: number;
}
const rows: Record<string, unknown>[] = [];
const goals: Record<string, unknown>[] = [];
const speed: Record<string, unknown>[] = [];

for (const { id, model } of models) {
  const c = model.config;
  const engine = await TextEngine.create(ort, 'wasm', model);
  // Teacher forcing needs the ensemble step by step: the same dropout-variant graphs the engine compiles.
  const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(c, model.weights), fullPlan(c), engine.attention === 'gqa' ? 'plain' : engine.attention, { dropout: true });
  const cells = new Map<string, Cell>();
  const cell = (k: Corruption, m: Method) => {
    const key = `${k}/${m}`;
    if (!cells.has(key)) cells.set(key, { agreement: [], nll: [], tokens: 0, decodeMs: 0, ensembleSteps: 0, steps: 0, changedByVote: 0, drops: 0 });
    return cells.get(key)!;
  };
  const t0 = performance.now();
  for (let s = 0; s < stories.length - 1; s++) {
    const ids = [c.bosTokenId, ...model.tokenizer.encode(stories[s]!)];
    const context = ids.slice(0, 1 + CONTEXT);
    const truth = ids.slice(1 + CONTEXT, 1 + CONTEXT + CONTINUATION);
    const base: GenerateOptions = { maxTokens: CONTINUATION, greedy: true, stopTokens: [], addBos: false };
    let clean: number[] = [];
    for await (const ev of engine.generate(context, base)) if (ev.type === 'done') clean = ev.tokens;
    for (const kind of CORRUPTIONS) {
      const prompt = corrupt(context, kind, model, stories[s + 1]!, 1000 * s + CORRUPTIONS.indexOf(kind));
      for (const method of METHODS) {
        const dropout = method === 'greedy' ? undefined : { context: 'prompt' as const, ...SETTINGS, seed: DROPOUT_SEED + s, guidance: method === 'uniform-dropout' ? ('uniform' as const) : ('epistemic' as const) };
        const cl = cell(kind, method);
        for await (const ev of engine.generate(prompt, { ...base, ...(dropout ? { dropout } : {}) })) {
          if (ev.type !== 'done') continue;
          cl.agreement.push(clean.filter((t, i) => ev.tokens[i] === t).length / clean.length);
          cl.tokens += ev.tokens.length - 1;
          cl.decodeMs += ev.stats.decodeMs;
          const d = ev.stats.dropout;
          if (d) {
            cl.ensembleSteps += d.ensembleSteps;
            cl.steps += d.steps;
            cl.changedByVote += d.changedByVote;
            cl.drops += d.dropsPerMember.reduce((a, b) => a + b, 0);
          }
        }
        // NLL of the true continuation, teacher-forced.
        runner.reset();
        const setup = dropout ? resolveDropout(dropout, prompt, c.bosTokenId, c.vocabSize, 0) : null;
        const prefilled = await prefillUncertainty(runner, prompt, setup?.positions ?? [], setup?.topK ?? 1);
        const ensemble = setup ? new DropoutEnsemble(runner, setup, prefilled.uncertainty, { greedy: true }) : null;
        let logits = prefilled.logits;
        let last = prompt.at(-1)!;
        const history = [...prompt];
        let nll = 0;
        for (const t of truth) {
          let p: number;
          if (ensemble) {
            const step = await ensemble.step(logits, last, history, undefined, argmax(logits));
            p = step.memberLogits.reduce((a, l) => a + softmax(l)[t]!, 0) / step.memberLogits.length;
          } else p = softmax(logits)[t]!;
          nll -= Math.log(p);
          history.push(t);
          last = t;
          logits = await runner.step([t]);
        }
        cl.nll.push(nll / truth.length);
      }
    }
    log(`${id}: story ${s + 1}/${stories.length - 1} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
  }
  await runner.release();
  // Speed: longer generations than the task's, interleaved, median round.
  const rounds: Record<'greedy' | 'dropout-decoding', number>[] = [];
  for (let rep = 0; rep < SPEED_REPS; rep++) {
    const round = { greedy: [0, 0], 'dropout-decoding': [0, 0] } as Record<'greedy' | 'dropout-decoding', [number, number]>;
    for (let s = 0; s < Math.min(3, stories.length - 1); s++) {
      const context = [c.bosTokenId, ...model.tokenizer.encode(stories[s]!)].slice(0, 1 + CONTEXT);
      const order = (rep + s) % 2 === 0 ? (['greedy', 'dropout-decoding'] as const) : (['dropout-decoding', 'greedy'] as const);
      for (const method of order) {
        const options: GenerateOptions = { maxTokens: SPEED_TOKENS, greedy: true, stopTokens: [], addBos: false, ...(method === 'greedy' ? {} : { dropout: { context: 'prompt', ...SETTINGS, seed: DROPOUT_SEED + s } }) };
        for await (const ev of engine.generate(context, options)) {
          if (ev.type !== 'done') continue;
          round[method][0] += ev.tokens.length - 1;
          round[method][1] += ev.stats.decodeMs;
        }
      }
    }
    rounds.push({ greedy: (round.greedy[0] / round.greedy[1]) * 1000, 'dropout-decoding': (round['dropout-decoding'][0] / round['dropout-decoding'][1]) * 1000 });
  }
  const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor(x.length / 2)]!;
  const greedyTps = median(rounds.map((r) => r.greedy));
  const dropoutTps = median(rounds.map((r) => r['dropout-decoding']));
  speed.push({ model: id, tokens: SPEED_TOKENS, reps: SPEED_REPS, greedy_tok_s: +greedyTps.toFixed(1), dropout_tok_s: +dropoutTps.toFixed(1), ratio: +(dropoutTps / greedyTps).toFixed(3), ratios_per_round: rounds.map((r) => +(r['dropout-decoding'] / r.greedy).toFixed(3)) });
  log(`${id}: speed greedy ${greedyTps.toFixed(0)} tok/s, dropout decoding ${dropoutTps.toFixed(0)} tok/s`);
  await engine.dispose();
  const mean = (x: number[]) => x.reduce((a, b) => a + b, 0) / x.length;
  for (const kind of CORRUPTIONS) {
    const byMethod = Object.fromEntries(METHODS.map((m) => [m, cell(kind, m)])) as Record<Method, Cell>;
    for (const method of METHODS) {
      const cl = byMethod[method];
      rows.push({
        model: id,
        corruption: kind,
        method,
        agreement: +mean(cl.agreement).toFixed(4),
        nll: +mean(cl.nll).toFixed(4),
        decode_tok_s: +((cl.tokens / cl.decodeMs) * 1000).toFixed(1),
        stories: cl.agreement.length,
        ...(method === 'greedy' ? {} : { ensemble_step_share: +(cl.ensembleSteps / cl.steps).toFixed(3), changed_by_vote: cl.changedByVote, drops: cl.drops }),
      });
    }
    const g = (m: Method) => mean(byMethod[m].agreement);
    const speed = (m: Method) => byMethod[m].tokens / byMethod[m].decodeMs;
    goals.push({
      model: id,
      corruption: kind,
      beats_greedy: g('dropout-decoding') > g('greedy'),
      beats_uniform: g('dropout-decoding') > g('uniform-dropout'),
      speed_ratio: +(speed('dropout-decoding') / speed('greedy')).toFixed(3),
    });
  }
}

const result = {
  task: { context_tokens: CONTEXT, continuation_tokens: CONTINUATION, stories: stories.length - 1, corruptions: CORRUPTIONS, methods: METHODS, members: MEMBERS, rates: RATES ?? 'default', min_rate: MIN_RATE, top_k: TOP_K },
  runtime: { backend: 'wasm', where: 'node', threads: 1, cpus: cpus().length, loadavg_start: loadStart, loadavg_end: loadavg()[0] },
  rows,
  goals,
  speed,
};
if (values.json) console.log(JSON.stringify(result));
else {
  console.log('model              corruption  method            agreement  nll     tok/s');
  for (const r of rows) console.log(`${String(r.model).padEnd(18)} ${String(r.corruption).padEnd(11)} ${String(r.method).padEnd(17)} ${String(r.agreement).padEnd(10)} ${String(r.nll).padEnd(7)} ${r.decode_tok_s}`);
  console.log(JSON.stringify({ goals, speed }, null, 1));
}
