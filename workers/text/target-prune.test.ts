/**
 * `compress({ target })` (workers/text/target-prune.ts): the splits a target tries keep the
 * target's parameters; on stories260K the result meets the target (a budget within half a KV
 * group's parameters, a shape exactly), the chosen split is the lowest-perplexity one of
 * the candidates, and each candidate's plan and perplexity are what its split gives when made
 * again by hand (depth plan, then width pruning on the scoring part of the calibration text). selectShape against a plain sort.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { createRng } from '../../core/random.ts';
import { blockParams, selectShape, unitParams, type BlockShape } from '../../models/compress/width-select.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { pruneToTarget, splitCalibration, targetSplits } from './target-prune.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const newEngine = () => TextEngine.create(ort, 'wasm', textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')));

describe('selectShape', () => {
  it('keeps the highest-scored KV groups (by the sum of their channels) and FFN channels of every block, as a plain sort does', () => {
    const s: BlockShape = { dim: 16, headSize: 4, nHeads: 6, nKvHeads: 3, hidden: 20 };
    const rand = createRng(5);
    const blocks = Array.from({ length: 3 }, () => ({ attention: Float64Array.from({ length: 24 }, rand), ffn: Float64Array.from({ length: 20 }, rand) }));
    const kept = selectShape(blocks, s, { kvHeads: 2, ffn: 7 });
    blocks.forEach((b, i) => {
      const group = [0, 1, 2].map((g) => b.attention.slice(g * 8, g * 8 + 8).reduce((a, v) => a + v, 0));
      const top = (xs: number[], n: number) => xs.map((v, j) => ({ v, j })).sort((a, b) => b.v - a.v).slice(0, n).map((x) => x.j).sort((a, b) => a - b);
      expect(kept[i]!.kvHeads).toEqual(top(group, 2));
      expect(kept[i]!.ffn).toEqual(top(Array.from(b.ffn), 7));
    });
    expect(() => selectShape(blocks, s, { kvHeads: 0, ffn: 7 })).toThrow(WhittleError);
    expect(() => selectShape(blocks, s, { kvHeads: 2, ffn: 21 })).toThrow(WhittleError);
  });
});

describe('targetSplits', () => {
  const s: BlockShape = { dim: 64, headSize: 8, nHeads: 8, nKvHeads: 4, hidden: 172 };
  it('a budget: every split keeps that fraction of the blocks (depth x width), up to `candidates` of them, from no depth pruning to the most', () => {
    const splits = targetSplits({ params: 0.5 }, s, 8, { candidates: 4 });
    expect(splits.map((x) => x.removeBlocks)).toEqual([0, 1, 3, 4]);
    for (const x of splits) expect(((8 - x.removeBlocks) * (1 - x.width)) / 8).toBeCloseTo(0.5, 12);
    expect(targetSplits({ params: 0.5 }, s, 5).map((x) => x.removeBlocks)).toEqual([0, 1, 2]);
    expect(targetSplits({ params: 1 }, s, 5)).toEqual([{ removeBlocks: 0, criterion: 'perplexity', width: 0, method: null }]);
  });
  it('a shape: depth criteria x width methods, all at that shape', () => {
    const splits = targetSplits({ layers: 4, heads: 4, ffn: 128 }, s, 5);
    expect(splits.map((x) => `${x.criterion}/${x.method}`)).toEqual(['perplexity/flap', 'perplexity/wanda-sp', 'angular/flap', 'angular/wanda-sp']);
    expect(splits.every((x) => x.removeBlocks === 1 && x.keep?.kvHeads === 2 && x.keep.ffn === 128)).toBe(true);
  });
  it('targets the model cannot reach are INVALID_ARGUMENT', () => {
    for (const t of [{ params: 0 }, { params: 1.5 }, { layers: 1, heads: 8, ffn: 172 }, { layers: 4, heads: 3, ffn: 100 }, { layers: 4, heads: 8, ffn: 0 }]) {
      expect(() => targetSplits(t, s, 5)).toThrow(WhittleError);
    }
  });
});

describe('splitCalibration', () => {
  it('scores on the first two thirds, decides on the first token then the last third (at most a context); short texts use all', () => {
    const ids = Array.from({ length: 90 }, (_, i) => i);
    expect(splitCalibration(ids, 256)).toEqual({ scoring: ids.slice(0, 60), deciding: [0, ...ids.slice(60)] });
    expect(splitCalibration(ids, 20)).toEqual({ scoring: ids.slice(0, 70), deciding: [0, ...ids.slice(70)] });
    expect(splitCalibration(ids.slice(0, 40), 256)).toEqual({ scoring: ids.slice(0, 40), deciding: ids.slice(0, 40) });
  });
});

describe('pruneToTarget on stories260K (WASM)', () => {
  const shape = (e: TextEngine): BlockShape => ({ dim: e.config.dim, headSize: e.headSize, nHeads: e.config.nHeads, nKvHeads: e.config.nKvHeads, hidden: e.config.hiddenDim });
  const measured = (e: TextEngine) => splitCalibration(e.tokenIds(DEFAULT_CALIBRATION_TEXT), e.config.maxSeqLen).deciding;

  it('{ params: 0.5 }: half the block parameters (within half a KV group), the lowest-perplexity split of the candidates, each candidate re-measurable', async () => {
    const engine = await newEngine();
    const result = await pruneToTarget(engine, { target: { params: 0.5 } });
    const s = shape(engine);
    // FLAP takes a unit while it brings the total closer to the target: within half a KV group.
    const slack = unitParams(s).group / 2;
    expect(result.params.before).toBe(engine.config.nLayers * blockParams(s));
    expect(result.candidates.map((c) => c.removeBlocks)).toEqual([0, 1, 2]);
    for (const c of result.candidates) expect(Math.abs(c.params - 0.5 * result.params.before)).toBeLessThanOrEqual(slack);
    const best = Math.min(...result.candidates.map((c) => c.perplexity));
    expect(result.candidates[result.chosen]!.perplexity).toBe(best);
    expect(result.plan).toEqual(result.candidates[result.chosen]!.plan);
    expect(engine.plan).toEqual(result.plan);
    expect(result.params.after).toBe(result.candidates[result.chosen]!.params);
    // The compiled plan measures what was reported; so does every candidate made again by hand
    // (its blocks, then width pruning on the scoring part of the calibration text).
    expect((await engine.perplexity(measured(engine))).perplexity).toBe(best);
    const { scoring } = splitCalibration(engine.tokenIds(DEFAULT_CALIBRATION_TEXT), engine.config.maxSeqLen);
    for (const c of result.candidates) {
      await engine.setPlan({ layers: c.plan.layers });
      if (c.method) expect((await engine.pruneWidth({ ratio: c.width, method: c.method, calibration: scoring })).plan).toEqual(c.plan);
      expect((await engine.perplexity(measured(engine))).perplexity).toBe(c.perplexity);
    }
    await engine.dispose();
  });

  it('{ layers: 4, heads: 4, ffn: 128 }: exactly that shape, the lowest-perplexity of depth criterion x width method', async () => {
    const engine = await newEngine();
    const result = await pruneToTarget(engine, { target: { layers: 4, heads: 4, ffn: 128 } });
    const s = shape(engine);
    expect(result.candidates).toHaveLength(4);
    expect(result.plan.layers).toHaveLength(4);
    for (const l of result.plan.layers) {
      expect(result.plan.width!.kvHeads[l]).toHaveLength(2);
      expect(result.plan.width!.ffn[l]).toHaveLength(128);
    }
    expect(result.params.after).toBe(4 * blockParams(s, 2, 128));
    expect(result.candidates[result.chosen]!.perplexity).toBe(Math.min(...result.candidates.map((c) => c.perplexity)));
    expect((await engine.perplexity(measured(engine))).perplexity).toBe(result.candidates[result.chosen]!.perplexity);
    await engine.dispose();
  });

  it('an unreachable target changes nothing; an aborted search restores the plan', async () => {
    const engine = await newEngine();
    await engine.setPlan({ layers: [0, 1, 2, 4] });
    await expect(pruneToTarget(engine, { target: { layers: 6, heads: 8, ffn: 172 } })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    const controller = new AbortController();
    const search = pruneToTarget(engine, { target: { params: 0.6 }, signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await expect(search).rejects.toMatchObject({ code: 'ABORTED' });
    expect(engine.plan).toEqual({ layers: [0, 1, 2, 4] });
    await engine.dispose();
  });
});
