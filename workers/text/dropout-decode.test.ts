/**
 * Dropout decoding against the reference forward (models/reference): the dropout variant's
 * graphs, the marked rows' uncertainty reduced in the graph (against the float64 reduction of
 * whole logits rows, the graph's own and the reference's, in one pass and in two), and the members' masks (a
 * dropped context token's key and value take no part in the member's attention; positions and
 * the cache unchanged), then the engine's exactness guard and its stats.
 */
import { describe, expect, it } from 'vitest';
import type { TextEvent } from '../../core/text-types.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import type { AttentionKind } from '../../models/llama/graph.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { compressPrepared } from '../../models/compress/compress-prepared.ts';
import { sliceWidth } from '../../models/compress/width-slice.ts';
import { randomLlama } from '../../models/llama/testing/random-model.ts';
import type { LlamaConfig, LlamaPlan, LlamaWeights } from '../../models/llama/types.ts';
import { LlamaReference } from '../../models/reference/llama-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import type { DropoutStats } from '../../core/text-types.ts';
import { contextUncertainty } from '../../models/reference/uncertainty-ref.ts';
import { DropoutEnsemble, memberLogits } from './dropout-decode.ts';
import { prefillUncertainty, type ContextUncertainty } from './dropout-uncertainty.ts';
import { resolveDropout } from './dropout-members.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { PlanRunner, type CompileLimits } from './runner.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

function expectClose(got: Float32Array, want: Float32Array, what: string, rel = 1e-4): void {
  expect(got.length, what).toBe(want.length);
  let scale = 0;
  for (const v of want) scale = Math.max(scale, Math.abs(v));
  let worst = 0;
  for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst / scale, what).toBeLessThan(rel);
}

const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

async function checkMembers(config: LlamaConfig, weights: LlamaWeights, plan: LlamaPlan, attention: AttentionKind, prompt: number[], marked: number[], follow: number[], drops: number[][], limits?: CompileLimits) {
  const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(config, weights), plan, attention, { dropout: true }, limits);
  if (limits) expect(runner.runsPerStep).toBe(plan.layers.length);
  runner.prefillChunk = 4; // several chunks, so marked rows come from more than one run
  const ref = new LlamaReference(config, weights, plan);
  const refRows = prompt.map((t, p) => ref.forward(t, p));
  const V = config.vocabSize;
  // The marked rows' whole logits, as the graph's head makes them, and the float64 host reduction
  // of them that was the production path before the reduction moved into the graph.
  const graphRows = await markedLogitRows(runner, prompt, marked);
  marked.forEach((p, i) => expectClose(graphRows.subarray(i * V, (i + 1) * V), refRows[p]!, `marked row ${p}`));
  const fromGraphRows = contextUncertainty(graphRows, marked.length, V, 5);
  const fromReference = contextUncertainty(Float32Array.from(marked.flatMap((p) => [...refRows[p]!])), marked.length, V, 5);
  const chunksWithMarked = new Set(marked.map((p) => Math.floor(p / runner.prefillChunk))).size;
  // One pass (the last chunk scores every row), then two passes with a limit of 1 row per scoring
  // run (so each chunk's rows, however many, take a scratch run of their own).
  for (const rowsPerRun of [undefined, 1]) {
    runner.reset();
    const { logits, uncertainty: u, transfer } = await prefillUncertainty(runner, prompt, marked, 5, undefined, rowsPerRun);
    expectClose(logits, refRows.at(-1)!, 'prefill logits');
    expect(transfer.extraRuns).toBe(rowsPerRun === undefined ? 0 : chunksWithMarked);
    expectUncertainty(u, fromGraphRows, 1e-5, `in-graph vs float64 host reduction of the same logits (rows per run ${rowsPerRun ?? 'all'})`);
    expectUncertainty(u, fromReference, 1e-4, `in-graph vs float64 reduction of the reference forward's logits (rows per run ${rowsPerRun ?? 'all'})`);
  }

  let pos = prompt.length;
  let last = prompt.at(-1)!;
  for (const [n, t] of [...follow, -1].entries()) {
    // Members for the logits after `last` (cached at pos - 1): each against a reference query
    // that excludes its dropped positions and recomputes its own entry of `last`. Every other
    // step fused: the run also carries the next base pass (`t` at pos, cached alone).
    const fused = n % 2 === 1 && t >= 0;
    const out = await memberLogits(runner, last, drops, undefined, fused ? t : undefined);
    const base = ref.forward(last, pos - 1);
    drops.forEach((d, m) => {
      const want = ref.forward(last, pos - 1, { exclude: new Set(d) });
      expectClose(out.subarray(m * V, (m + 1) * V), want, `member ${m} (drops ${d}) at ${pos - 1}`);
      if (d.length > 0) expect(maxDiff(want, base), 'a drop changes the reference').toBeGreaterThan(1e-4);
    });
    ref.forward(last, pos - 1); // the reference's cache slot back to the base pass's entry
    if (t < 0) break;
    // The members left the cache as it was: the next base step matches the reference.
    const next = fused ? out.subarray(drops.length * V) : await runner.step([t]);
    expect(runner.position).toBe(pos + 1);
    expectClose(next, ref.forward(t, pos), `${fused ? 'fused ' : ''}base step at ${pos}`);
    last = t;
    pos++;
  }
  await runner.release();
}

/**
 * The old way, kept here as the test's source of the graph's own logits: each prefill chunk's
 * head reads the marked rows too and returns their logits [marked.length * vocab].
 */
async function markedLogitRows(runner: PlanRunner, prompt: readonly number[], marked: readonly number[]): Promise<Float32Array> {
  runner.reset();
  const V = runner.vocabSize;
  const rows = new Float32Array(marked.length * V);
  let next = 0;
  for (let start = 0; start < prompt.length; start += runner.prefillChunk) {
    const part = prompt.slice(start, start + runner.prefillChunk);
    const own: number[] = [];
    while (next < marked.length && marked[next]! < start + part.length) own.push(marked[next++]! - start);
    const out = await runner.rows(part, { positions: part.map((_, s) => start + s), logitRows: own, append: true });
    rows.set(out, (next - own.length) * V);
  }
  return rows;
}

/** H and KL within `tol` (absolute, nats) and the same top-k ids. */
function expectUncertainty(got: ContextUncertainty, want: ContextUncertainty, tol: number, what: string): void {
  const worst = (a: Float64Array, b: Float64Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
  expect(got.aleatoric.length, what).toBe(want.aleatoric.length);
  expect(worst(got.aleatoric, want.aleatoric), `${what}: aleatoric`).toBeLessThan(tol);
  expect(worst(got.epistemic, want.epistemic), `${what}: epistemic`).toBeLessThan(tol);
  expect([...got.topK], `${what}: top-k`).toEqual([...want.topK]);
}

const stories = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
const prompt = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376];
const drops = [[2], [1, 4, 5], [], [3, 6, 7, 8]];

describe.each(['onnx', 'plain'] as const)('dropout variant (%s attention) vs the reference forward', (attention) => {
  it('stories260K: marked rows, base steps and members with dropped positions', () => checkMembers(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, attention, prompt, [1, 2, 5, 6, 9], [298, 315, 421, 395], drops));
  it('stories260K, a pruned plan with an early exit (members run the full path)', () => checkMembers(stories.config, stories.weights, { layers: [0, 1, 3, 4], exit: 2 }, attention, prompt, [3, 4, 8], [298], drops));
  it('stories260K split into one session per block (each run fed its RoPE rows, members sharing a position)', () => checkMembers(stories.config, stories.weights, { layers: [0, 1, 2, 3, 4] }, attention, prompt, [1, 2, 5, 6, 9], [298, 315], drops, { segmentBytes: 1 }));
  it('random GQA model, half RoPE, untied', () => {
    const m = randomLlama();
    return checkMembers(m.config, m.weights, { layers: [0, 1, 2] }, attention, [1, 5, 9, 33, 7, 0, 12], [1, 2, 3, 4, 5, 6], [39], [[1, 2], [5], [0, 3, 4]]);
  });
});

describe('context uncertainty reduced in the graph: quantized heads, a larger vocabulary', () => {
  // A quantized head in both If branches, read from the enclosing graph. The prompt is one chunk
  // and the reference logits come from one run over the same rows in the same order (the last
  // position, then the marked ones): DynamicQuantizeMatMul quantizes its input per tensor, so an
  // int8 head's logits of a row depend on the other rows of its run (by 6e-3 nats of H here
  // between the per-chunk batches of the old path and this one's single batch).
  it.each([['int8 head (q8)', 'int8'], ['MatMulNBits q4 head', 'nbits']] as const)('stories260K, %s: in-graph vs the float64 reduction of the same head\'s logits', async (_, kernel) => {
    const prepared = compressPrepared(prepareWeights(stories.config, stories.weights), { linear: kernel === 'int8' ? 'q8' : 'q4', head: 'q8', kernel }, 'wasm');
    expect(prepared.head instanceof Float32Array).toBe(false);
    const runner = await PlanRunner.compile(ort, 'wasm', prepared, { layers: [0, 1, 2, 3, 4] }, 'onnx', { dropout: true });
    const marked = [1, 2, 5, 6, 9];
    const rows = await runner.rows(prompt, { positions: prompt.map((_, p) => p), logitRows: [prompt.length - 1, ...marked], append: true });
    const want = contextUncertainty(rows.subarray(512), marked.length, 512, 5);
    runner.reset();
    expectUncertainty((await prefillUncertainty(runner, prompt, marked, 5)).uncertainty, want, 1e-5, kernel);
    await runner.release();
  });

  // 4096 tokens, 40 marked rows over 6 prefill chunks of 8 (7, 8, 8, 8, 8 and 1 marked): P̄ spans
  // every chunk, float32 sums run over 4096 entries; two passes at 16 rows per run group the
  // chunks' rows as 15, 16, 9: 3 scratch runs.
  it.each(['onnx', 'plain'] as const)('random GQA model, vocab 4096 (%s attention): one pass and two passes vs the float64 reduction', async (attention) => {
    const m = randomLlama({ vocabSize: 4096, maxSeqLen: 64, dim: 48, nHeads: 6, nKvHeads: 2 }, 7);
    const runner = await PlanRunner.compile(ort, 'wasm', prepareWeights(m.config, m.weights), { layers: [0, 1, 2] }, attention, { dropout: true });
    runner.prefillChunk = 8;
    const prompt = Array.from({ length: 41 }, (_, i) => (i * 2654435761) % 4096);
    const marked = Array.from({ length: 40 }, (_, i) => i + 1);
    const want = contextUncertainty(await markedLogitRows(runner, prompt, marked), marked.length, 4096, 5);
    for (const rowsPerRun of [undefined, 16]) {
      runner.reset();
      const { uncertainty, transfer } = await prefillUncertainty(runner, prompt, marked, 5, undefined, rowsPerRun);
      // float32 sums of 4096 terms of size up to ln 4096 = 8.3 nats: about 1e-5 of rounding.
      expectUncertainty(uncertainty, want, 5e-5, `rows per run ${rowsPerRun ?? 'all'}`);
      expect(transfer.extraRuns).toBe(rowsPerRun === undefined ? 0 : 3);
      // What crossed: no marked row's logits (40 x 4096 floats would be 655 360 bytes).
      expect(transfer.out).toBeLessThan(40 * 4096 * 4 / 2);
    }
    await runner.release();
  });
});

async function collect(it: AsyncIterable<TextEvent>): Promise<TextEvent[]> {
  const out: TextEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}
const done = (evs: TextEvent[]) => evs.at(-1) as Extract<TextEvent, { type: 'done' }>;

describe('TextEngine dropout decoding (stories260K)', async () => {
  const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')));
  const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.';
  const plain = done(await collect(engine.generate(text, { maxTokens: 40, greedy: true })));

  it('exactness guard: members 0 or no marked context decode the plain tokens', async () => {
    for (const dropout of [{ context: 'prompt' as const, members: 0 }, { context: [] }]) {
      const d = done(await collect(engine.generate(text, { maxTokens: 40, greedy: true, dropout })));
      expect(d.tokens).toEqual(plain.tokens);
      expect(d.stats.dropout).toBeUndefined();
    }
  });

  it('members that can drop nothing (all rates 0) decode the plain tokens through the variant graphs', async () => {
    const d = done(await collect(engine.generate(text, { maxTokens: 40, greedy: true, dropout: { context: 'prompt', rates: [0, 0, 0], minRate: 0 } })));
    expect(d.tokens).toEqual(plain.tokens);
    expect(d.stats.dropout).toMatchObject({ steps: 40, ensembleSteps: 0, dropsPerMember: [0, 0, 0], memberRuns: 0 });
  });

  it('greedy: seeded, the vote is the majority, stats add up', async () => {
    const options = { maxTokens: 40, greedy: true, dropout: { context: [[1, 30]] as [number, number][], seed: 3 } };
    const evs = await collect(engine.generate(text, options));
    const d = done(evs);
    const again = done(await collect(engine.generate(text, options)));
    expect(again.tokens).toEqual(d.tokens);
    const s = d.stats.dropout!;
    expect(s.context.positions).toEqual(Array.from({ length: 29 }, (_, i) => i + 1));
    expect(s.context.epistemic.every((x) => x >= 0)).toBe(true);
    expect(s.uncertainty.epistemic.max).toBeGreaterThan(s.uncertainty.epistemic.min);
    const steps = evs.filter((e): e is Extract<TextEvent, { type: 'token' }> => e.type === 'token' && e.dropout !== undefined);
    expect(steps.length).toBe(s.ensembleSteps);
    expect(s.ensembleSteps).toBeGreaterThan(0);
    expect(s.memberRuns).toBe(s.ensembleSteps);
    const drops = [0, 0, 0];
    let changed = 0;
    for (const e of steps) {
      const info = e.dropout!;
      expect(info.votes).toHaveLength(3);
      info.dropped.forEach((p, m) => {
        drops[m]! += p.length;
        for (const x of p) expect(x >= 1 && x < 30).toBe(true);
      });
      const counts = new Map<number, number>();
      for (const v of info.votes) counts.set(v, (counts.get(v) ?? 0) + 1);
      const top = Math.max(...counts.values());
      const leaders = [...counts].filter(([, c]) => c === top).map(([t]) => t);
      expect(e.token).toBe(leaders.length === 1 ? leaders[0] : info.base);
      if (e.token !== info.base) changed++;
    }
    expect(drops).toEqual(s.dropsPerMember);
    expect(changed).toBe(s.changedByVote);
    // Higher rates drop more.
    expect(s.dropsPerMember[2]).toBeGreaterThan(s.dropsPerMember[0]!);
  });

  it('sampling: the members vote over seeded samples', async () => {
    const options = { maxTokens: 24, temperature: 0.9, seed: 11, dropout: { context: 'prompt' as const } };
    const a = done(await collect(engine.generate(text, options)));
    const b = done(await collect(engine.generate(text, options)));
    expect(a.tokens).toEqual(b.tokens);
    expect(a.stats.dropout!.steps).toBe(a.tokens.length);
  });

  // Width-pruned blocks cache fewer KV heads than the config says: the fused run's cached row
  // must be cut at each block's own row width (a config-wide width read past the end before).
  it.each(['full width', 'width-pruned blocks'])('fusing the next base pass into the member run changes no token (seeded greedy, 48 steps, %s)', async (which) => {
    const c = stories.config;
    const full = prepareWeights(c, stories.weights);
    const range = (n: number, skip = 0) => Array.from({ length: n }, (_, j) => j + skip);
    // Kept KV groups and FFN channels per block: odd blocks lose one or two KV groups.
    const narrow = {
      kvHeads: range(c.nLayers).map((i) => (i % 2 === 1 ? range(Math.max(1, c.nKvHeads - 1 - (i % 3)), 1) : range(c.nKvHeads))),
      ffn: range(c.nLayers).map((i) => range(c.hiddenDim - 8 * i)),
    };
    const weights = which === 'full width' ? full : sliceWidth(full, narrow);
    // A noisy context (every third token replaced), where dropping context tokens sways votes.
    const ids = engine.tokenIds(text).map((t, i) => (i > 0 && i % 3 === 0 ? 3 + ((t * 7919) % 509) : t));
    // High rates, so that some votes overturn the base token (and with it a fused base pass).
    const setup = resolveDropout({ context: 'prompt', seed: 9, rates: [0.6, 0.9, 1], minRate: 0.5 }, ids, 1, 512, 0);
    const runs: { tokens: number[]; stats: DropoutStats }[] = [];
    for (const fuse of [false, true]) {
      const runner = await PlanRunner.compile(ort, 'wasm', weights, { layers: [0, 1, 2, 3, 4] }, 'onnx', { dropout: true });
      const { logits: first, uncertainty } = await prefillUncertainty(runner, ids, setup.positions, setup.topK);
      const ensemble = new DropoutEnsemble(runner, setup, uncertainty, { greedy: true });
      let logits = first;
      let last = ids.at(-1)!;
      const history = [...ids];
      const tokens: number[] = [];
      for (let i = 0; i < 48; i++) {
        const step = await ensemble.step(logits, last, history, undefined, undefined, fuse);
        tokens.push(step.token);
        history.push(step.token);
        last = step.token;
        logits = step.next ?? (await runner.step([last]));
      }
      runs.push({ tokens, stats: ensemble.stats(0) });
      await runner.release();
    }
    expect(runs[1]!.tokens).toEqual(runs[0]!.tokens);
    expect(runs[1]!.stats.fusedRuns).toBe(runs[1]!.stats.memberRuns);
    expect(runs[1]!.stats.fusedRuns).toBeGreaterThan(0);
    expect(runs[0]!.stats.fusedRuns).toBe(0);
    // This seed overturns a fused base pass on the full model (the narrowed one votes otherwise).
    if (which === 'full width') expect(runs[1]!.stats.overturnedFused, 'a vote overturned a fused base pass (its cache entry truncated)').toBeGreaterThan(0);
    const { fusedRuns: _a, overturnedFused: _b, memberMs: _c, ...plain } = runs[0]!.stats;
    const { fusedRuns: _d, overturnedFused: _e, memberMs: _f, ...fused } = runs[1]!.stats;
    expect(fused).toEqual(plain);
  });

  it('bad options are INVALID_ARGUMENT', async () => {
    for (const options of [{ dropout: { context: 'prompt' as const, rates: [0.5] } }, { dropout: { context: [[0, 999]] as [number, number][] } }, { dropout: { context: 'prompt' as const }, speculate: { exit: 2, draft: 2 } }]) {
      await expect(collect(engine.generate(text, { maxTokens: 4, ...options }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    }
  });
});
