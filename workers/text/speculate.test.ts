/**
 * Self-speculative decoding on the LayerSkip recipe's trained models (models/stories-layerskip,
 * models/stories-baseline): greedy exactness on many prompts, exits and draft modes; the
 * distribution of sampled tokens against the exact full-depth distribution; automatic exit.
 */
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../sdk/cli/load.ts';
import { HELD_OUT_PROMPTS } from '../../models/llama/testing/held-out-prompts.ts';
import { loadOrt } from '../ort/runtime.ts';
import type { GenerateOptions, TextEvent } from '../../core/text-types.ts';
import { TextEngine } from './engine.ts';
import { tokenDistribution, type SamplingOptions } from './sampler.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const ALL = [0, 1, 2, 3, 4, 5, 6, 7];

const PROMPTS = HELD_OUT_PROMPTS;

async function run(engine: TextEngine, prompt: string | number[], options: Parameters<TextEngine['generate']>[1]): Promise<Extract<TextEvent, { type: 'done' }>> {
  let last: TextEvent | undefined;
  for await (const ev of engine.generate(prompt, options)) last = ev;
  if (last?.type !== 'done') throw new Error('no done event');
  return last;
}

describe.each(['stories-layerskip', 'stories-baseline'])('%s: greedy speculation is token-identical to full depth', async (id) => {
  const full = await TextEngine.create(ort, 'wasm', loadModel(id));
  const spec = await TextEngine.create(ort, 'wasm', loadModel(id), { plan: { layers: ALL, exit: 2 } });
  const greedy: GenerateOptions = { maxTokens: 48, greedy: true, stopTokens: [] };

  it.each([
    { exit: 2, draft: 3 },
    { exit: 4, draft: 'auto' },
    { exit: 6, draft: 1 },
  ] as const)('exit $exit, draft $draft, on 12 prompts', async ({ exit, draft }) => {
    let drafted = 0;
    let accepted = 0;
    for (const prompt of PROMPTS) {
      const want = await run(full, prompt, greedy);
      const got = await run(spec, prompt, { ...greedy, speculate: { exit, draft } });
      expect(got.tokens, prompt).toEqual(want.tokens);
      expect(got.text).toBe(want.text);
      const s = got.stats.speculation!;
      expect(s.exit).toBe(exit);
      expect(s.tokensPerRound).toBeCloseTo((s.accepted + s.rounds) / s.rounds, 9);
      drafted += s.drafted;
      accepted += s.accepted;
    }
    expect(spec.plan).toEqual({ layers: ALL, exit });
    expect(accepted).toBeLessThan(drafted); // rejections happened, so the replacement path ran
    expect(accepted).toBeGreaterThan(0);
  });

  it('with a repetition penalty too (applied per draft position), on 4 prompts', async () => {
    const options: GenerateOptions = { ...greedy, repetitionPenalty: 1.3 };
    for (const prompt of PROMPTS.slice(0, 4)) {
      const want = await run(full, prompt, options);
      const got = await run(spec, prompt, { ...options, speculate: { exit: 3, draft: 3 } });
      expect(got.tokens, prompt).toEqual(want.tokens);
    }
    for (const bad of [0, -1, Number.NaN]) {
      await expect(run(spec, PROMPTS[0]!, { ...greedy, repetitionPenalty: bad, speculate: { exit: 3 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });

  it('token events mark accepted drafts and carry the rejected ones', async () => {
    const events: TextEvent[] = [];
    for await (const ev of spec.generate(PROMPTS[0]!, { ...greedy, speculate: { exit: 2, draft: 4 } })) events.push(ev);
    const tokens = events.filter((e) => e.type === 'token');
    expect(tokens.every((e) => e.origin === 'draft' || e.origin === 'verifier')).toBe(true);
    const done = events.at(-1) as Extract<TextEvent, { type: 'done' }>;
    // Accepted drafts are emitted as 'draft' (the last round may be cut by maxTokens, so <=);
    // the verifier's token carries the drafts it rejected.
    const drafts = tokens.filter((e) => e.origin === 'draft').length;
    expect(drafts).toBeGreaterThan(0);
    expect(drafts).toBeLessThanOrEqual(done.stats.speculation!.accepted);
    expect(tokens[0]!.origin).toBe('verifier');
    const rejected = tokens.filter((e) => e.rejected);
    expect(rejected.every((e) => e.origin === 'verifier' && e.rejected!.tokens.length > 0)).toBe(true);
    expect(rejected.length).toBeGreaterThan(0);
    // Their text is what they decode to where they stood (after the prompt and the tokens before).
    const tok = spec.tokenizer;
    tokens.forEach((e, i) => {
      if (!e.rejected) return;
      const context = [spec.config.bosTokenId, ...tok.encode(PROMPTS[0]!), ...done.tokens.slice(0, i)];
      expect(e.rejected.text).toBe(tok.decode([...context, ...e.rejected.tokens]).slice(tok.decode(context).length));
    });
  });
});

describe('sampling with speculation follows the full-depth distribution', async () => {
  const engine = await TextEngine.create(ort, 'wasm', loadModel('stories-layerskip'), { plan: { layers: ALL, exit: 2 } });
  const sampling: SamplingOptions = { temperature: 1, topK: 4 };
  const prompt = engine.tokenizer.encode('The dog ran to the');
  const ids = [engine.config.bosTokenId, ...prompt];

  it('joint distribution of the first two tokens over 600 seeds passes a chi-square test against the exact one', async () => {
    // Exact joint P(t1, t2) = p(t1 | prompt) p(t2 | prompt, t1) from full-depth logits, and what
    // a broken rule that accepted every draft would give instead: p(t1) q(t2 | t1), q = the exit's.
    const p1 = tokenDistribution(await engine.logits(ids), sampling, ids);
    const exact = new Map<string, number>();
    const draftOnly = new Map<string, number>();
    for (let t1 = 0; t1 < p1.length; t1++) {
      if (p1[t1] === 0) continue;
      const p2 = tokenDistribution(await engine.logits([...ids, t1]), sampling, [...ids, t1]);
      const q2 = tokenDistribution(await engine.logits([...ids, t1], { exit: true }), sampling, [...ids, t1]);
      for (let t2 = 0; t2 < p2.length; t2++) {
        if (p2[t2]! > 0) exact.set(`${t1},${t2}`, p1[t1]! * p2[t2]!);
        if (q2[t2]! > 0) draftOnly.set(`${t1},${t2}`, (draftOnly.get(`${t1},${t2}`) ?? 0) + p1[t1]! * q2[t2]!);
      }
    }
    const n = 600;
    const counts = new Map<string, number>();
    let drafted = 0;
    let accepted = 0;
    for (let seed = 0; seed < n; seed++) {
      const d = await run(engine, ids, { ...sampling, seed, maxTokens: 2, stopTokens: [], addBos: false, speculate: { exit: 2, draft: 3 } });
      const key = d.tokens.join(',');
      counts.set(key, (counts.get(key) ?? 0) + 1);
      drafted += d.stats.speculation!.drafted;
      accepted += d.stats.speculation!.accepted;
    }
    // Every observed pair is possible under the exact distribution.
    for (const key of counts.keys()) expect(exact.has(key), key).toBe(true);
    const chiSquare = (probs: Map<string, number>) => {
      // Pool cells with expected count < 5 into one, as the test requires.
      let stat = 0;
      let cells = 0;
      let poolE = 0;
      let poolO = 0;
      const keys = new Set([...probs.keys(), ...counts.keys()]);
      for (const k of keys) {
        const e = (probs.get(k) ?? 0) * n;
        const o = counts.get(k) ?? 0;
        if (e < 5) {
          poolE += e;
          poolO += o;
          continue;
        }
        stat += (o - e) ** 2 / e;
        cells++;
      }
      if (poolE > 0) {
        stat += (poolO - poolE) ** 2 / Math.max(poolE, 1e-9);
        cells++;
      }
      const df = cells - 1;
      // Wilson-Hilferty: the chi-square quantile at p = 0.001 (z = 3.09).
      const critical = df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;
      return { stat, critical, df };
    };
    const right = chiSquare(exact);
    expect(right.df).toBeGreaterThan(3);
    expect(right.stat).toBeLessThan(right.critical);
    // The test has power: the accept-everything distribution is rejected by the same data.
    const wrong = chiSquare(draftOnly);
    expect(wrong.stat).toBeGreaterThan(wrong.critical);
    expect(accepted).toBeLessThan(drafted);
  }, 120_000);
});

describe('automatic exit', async () => {
  const engine = await TextEngine.create(ort, 'wasm', loadModel('stories-layerskip'));

  it('calibrates the exit when the plan has none, compiles it, and keeps greedy output exact', async () => {
    const full = await run(engine, 'Once upon a time', { maxTokens: 32, greedy: true, stopTokens: [] });
    const got = await run(engine, 'Once upon a time', { maxTokens: 32, greedy: true, stopTokens: [], speculate: {} });
    expect(got.tokens).toEqual(full.tokens);
    const s = got.stats.speculation!;
    expect(s.draft).toBe('auto');
    expect(s.calibration!.predictedSpeedup).toBeGreaterThan(0);
    expect(engine.plan.exit).toBe(s.exit);
    // The exit was compiled for speculation only: the next plain generation is back on the
    // caller's (unsplit) plan, and still the same tokens.
    const again = await run(engine, 'Once upon a time', { maxTokens: 32, greedy: true, stopTokens: [] });
    expect(again.tokens).toEqual(full.tokens);
    expect(engine.plan).toEqual({ layers: [0, 1, 2, 3, 4, 5, 6, 7] });
    expect(engine.nodeCounts).toHaveLength(1);
    const { profile, choice, stepCost } = await engine.calibrateExits();
    expect(choice.exit).toBe(s.exit);
    expect(stepCost.perPosition).toBeGreaterThan(0);
    expect(choice.speedups).toHaveLength(7);
    // The LayerSkip model's exits agree with the final layer more the deeper they are (REPORT.md).
    expect(profile.agreement[0]!).toBeLessThan(profile.agreement[5]!);
    expect(profile.agreement[7]).toBe(1);
    expect(profile.draftCost.every((c, i) => i === 0 || c > profile.draftCost[i - 1]!)).toBe(true);
    // the exit path and the verify path always add up to the whole model plus one extra head
    const whole = profile.draftCost[0]! + profile.verifyCost[0]!;
    expect(whole).toBeGreaterThan(1);
    expect(profile.verifyCost.every((v, i) => Math.abs(v + profile.draftCost[i]! - whole) < 1e-12)).toBe(true);
  });

  it('calibrated agreement separates the LayerSkip model from the baseline', async () => {
    const baseline = await TextEngine.create(ort, 'wasm', loadModel('stories-baseline'));
    const a = (await engine.calibrateExits()).profile.agreement;
    const b = (await baseline.calibrateExits()).profile.agreement;
    for (const e of [0, 1, 2, 3]) expect(a[e]!).toBeGreaterThan(b[e]!);
    await baseline.dispose();
  });
});
