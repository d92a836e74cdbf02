/**
 * Structured width pruning, the pure parts (width-scores.ts, width-select.ts, width-slice.ts):
 * - scores against naive loops over the checkpoint's [out, in] layout (the code under test reads
 *   the prepared [in, out] layout);
 * - selection: Wanda-sp's uniform counts recomputed, FLAP's global ranking checked for what it
 *   promises (parameters at the target, lower standardized scores removed first);
 * - slicing: the sliced prepared weights compiled into graphs (every attention kind) give the
 *   logits of the reference forward (models/reference) over the checkpoint arrays narrowed by
 *   hand, FLAP's biases computed by hand, within 1e-4, for a whole generation (per-layer KV caches).
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { createRng } from '../../core/random.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { PlanRunner } from '../../workers/text/runner.ts';
import { prepareWeights } from '../llama/prepare.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import { headSizeOf, type WidthPlan } from '../llama/types.ts';
import { LlamaReference } from '../reference/llama-ref.ts';
import { narrowByHand } from '../reference/width-ref.ts';
import { flapScores, wandaSpScores } from './width-scores.ts';
import { blockParams, selectWidth, unitParams, type BlockShape } from './width-select.ts';
import { sliceWidth, type InputMeans } from './width-slice.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

const rand = createRng(2024);
const uniform = (n: number, lo = -1, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rand());

/** Prepared [in, out] -> checkpoint [out, in]. */
function toOutIn(w: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = w[r * cols + c]!;
  return out;
}

describe('channel scores', () => {
  const dim = 12;
  const A = 16; // o_proj inputs (4 heads of 4)
  const F = 20;
  const wo = uniform(A * dim);
  const down = uniform(F * dim);
  const woStat = uniform(A, 0.01, 2);
  const downStat = uniform(F, 0.01, 2);

  it("FLAP: (var * ||W[:, c]||^2)^2 for o_proj's inputs, var * ||W[:, c]||^2 for down_proj's", () => {
    const got = flapScores(wo, down, woStat, downStat, dim);
    const naive = (w: Float32Array, rows: number, v: Float32Array) => {
      const W = toOutIn(w, rows, dim); // [dim, rows]: W[o][c]
      return Array.from({ length: rows }, (_, c) => {
        let n = 0;
        for (let o = 0; o < dim; o++) n += W[o * rows + c]! * W[o * rows + c]!;
        return v[c]! * n;
      });
    };
    const wantAttn = naive(wo, A, woStat).map((x) => x * x);
    const wantFfn = naive(down, F, downStat);
    for (let c = 0; c < A; c++) expect(got.attention[c]).toBeCloseTo(wantAttn[c]!, 10);
    for (let j = 0; j < F; j++) expect(got.ffn[j]).toBeCloseTo(wantFfn[j]!, 10);
  });

  it('Wanda-sp: mean over outputs of |W[o, c]| * ||x_c||', () => {
    const positions = 37;
    const got = wandaSpScores(wo, down, woStat, downStat, positions, dim);
    const naive = (w: Float32Array, rows: number, ms: Float32Array) => {
      const W = toOutIn(w, rows, dim);
      return Array.from({ length: rows }, (_, c) => {
        let s = 0;
        for (let o = 0; o < dim; o++) s += Math.abs(W[o * rows + c]!) * Math.sqrt(ms[c]! * positions);
        return s / dim;
      });
    };
    naive(wo, A, woStat).forEach((v, c) => expect(got.attention[c]).toBeCloseTo(v, 10));
    naive(down, F, downStat).forEach((v, j) => expect(got.ffn[j]).toBeCloseTo(v, 10));
  });

  it('refuses statistics that do not fit the weights', () => {
    expect(() => flapScores(wo, down, woStat.subarray(1), downStat, dim)).toThrow(WhittleError);
  });
});

describe('selection', () => {
  const shape: BlockShape = { dim: 16, headSize: 4, nHeads: 8, nKvHeads: 4, hidden: 40 };
  const blocks = Array.from({ length: 5 }, (_, b) => ({
    // Blocks differ in scale, so raw scores would favour some; FLAP standardizes per block.
    attention: Float64Array.from(uniform(32, 0, 1 + b)),
    ffn: Float64Array.from(uniform(40, 0, 1 + 3 * b)),
  }));
  const u = unitParams(shape);

  it('uniform (Wanda-sp): round(ratio K) lowest-summed groups, then the lowest channels up to the ratio, in every block', () => {
    for (const ratio of [0.1, 0.3]) {
      const kept = selectWidth(blocks, shape, ratio, 'uniform');
      blocks.forEach((b, i) => {
        const groups = Math.round(ratio * 4);
        const sums = [0, 1, 2, 3].map((g) => b.attention.slice(g * 8, g * 8 + 8).reduce((x, y) => x + y, 0));
        const wantHeads = [0, 1, 2, 3].filter((g) => sums.filter((s) => s < sums[g]!).length >= groups);
        expect(kept[i]!.kvHeads).toEqual(wantHeads);
        const channels = Math.round((ratio * blockParams(shape) - groups * u.group) / u.channel);
        const sorted = [...b.ffn].sort((x, y) => x - y);
        const wantFfn = [...b.ffn.keys()].filter((j) => b.ffn[j]! > sorted[channels - 1]!);
        expect(kept[i]!.ffn).toEqual(wantFfn);
      });
    }
  });

  for (const standardization of ['model', 'block'] as const) {
    it(`adaptive (FLAP, standardized per ${standardization}): parameters at the target; within a kind, every removed unit scores at most every kept one`, () => {
      // (x - mean) / sample std over one block's channels, or over every block's channels of the kind.
      const stats = (xs: Float64Array[]) => {
        const all = xs.flatMap((x) => Array.from(x));
        const m = all.reduce((a, b) => a + b, 0) / all.length;
        return { m, sd: Math.sqrt(all.reduce((a, b) => a + (b - m) ** 2, 0) / (all.length - 1)) };
      };
      const modelAttn = stats(blocks.map((b) => b.attention));
      const modelFfn = stats(blocks.map((b) => b.ffn));
      const z = (x: Float64Array, kind: 'attention' | 'ffn') => {
        const { m, sd } = standardization === 'block' ? stats([x]) : kind === 'attention' ? modelAttn : modelFfn;
        return Array.from(x, (v) => (v - m) / sd);
      };
      for (const ratio of [0.1, 0.2, 0.4]) {
        const kept = selectWidth(blocks, shape, ratio, 'adaptive', standardization);
        const after = kept.reduce((n, k) => n + blockParams(shape, k.kvHeads.length, k.ffn.length), 0);
        const removed = blocks.length * blockParams(shape) - after;
        expect(Math.abs(removed - ratio * blocks.length * blockParams(shape))).toBeLessThanOrEqual(u.channel / 2);
        const groupScore: { s: number; kept: boolean }[] = [];
        const channelScore: { s: number; kept: boolean }[] = [];
        blocks.forEach((b, i) => {
          const za = z(b.attention, 'attention');
          // A block's last group / channel stays whatever it scores (no attention- or FFN-free blocks): left out.
          const lastGroup = kept[i]!.kvHeads.length === 1;
          const lastChannel = kept[i]!.ffn.length === 1;
          for (let g = 0; g < 4; g++) {
            const k = kept[i]!.kvHeads.includes(g);
            if (!(k && lastGroup)) groupScore.push({ s: za.slice(g * 8, g * 8 + 8).reduce((a, c) => a + c, 0) / 8, kept: k });
          }
          z(b.ffn, 'ffn').forEach((s, j) => {
            const k = kept[i]!.ffn.includes(j);
            if (!(k && lastChannel)) channelScore.push({ s, kept: k });
          });
          expect(kept[i]!.kvHeads.length).toBeGreaterThan(0);
        });
        for (const list of [groupScore, channelScore]) {
          const maxRemoved = Math.max(...list.filter((x) => !x.kept).map((x) => x.s));
          const minKept = Math.min(...list.filter((x) => x.kept).map((x) => x.s));
          if (list.some((x) => !x.kept)) expect(maxRemoved).toBeLessThanOrEqual(minKept + 1e-12);
        }
        // Ratios adapt: the blocks do not all lose the same number of channels.
        if (ratio >= 0.2) expect(new Set(kept.map((k) => k.ffn.length)).size).toBeGreaterThan(1);
      }
    });
  }

  it('refuses a ratio outside [0, 1)', () => {
    for (const r of [-0.1, 1, Number.NaN]) expect(() => selectWidth(blocks, shape, r, 'adaptive')).toThrow(WhittleError);
  });
});

describe('sliced weights compile into graphs that match the reference forward', () => {
  // GQA with Q/K/V biases and 'half' RoPE (the permuted Q/K columns must move as whole heads).
  const { config: c, weights } = randomLlama(
    { dim: 64, hiddenDim: 48, nLayers: 3, nHeads: 8, nKvHeads: 4, vocabSize: 60, maxSeqLen: 32, qkvBias: true },
    5,
    0.3,
  );
  const hs = headSizeOf(c);
  const width: WidthPlan = {
    kvHeads: [[1, 3], [0, 1, 2, 3], [2]],
    ffn: [Array.from({ length: 48 }, (_, j) => j).filter((j) => j % 3 !== 1), Array.from({ length: 30 }, (_, j) => j + 10), [0, 5, 47]],
    bias: true,
  };
  const means: InputMeans[] = weights.layers.map(() => ({ wo: uniform(c.nHeads * hs), down: uniform(c.hiddenDim, -0.5, 0.5) }));
  const prepared = prepareWeights(c, weights);
  const prompt = [1, 7, 22, 3, 45, 9];

  for (const attention of ['onnx', 'plain', 'gqa'] as const) {
    for (const bias of [true, false]) {
      it(`${attention} attention, ${bias ? 'with' : 'without'} bias compensation: prefill and 8 decode steps within 1e-4`, async () => {
        const plan = { ...width, bias };
        const narrow = sliceWidth(prepared, plan, (l) => means[l]);
        expect([narrow.layers[1]!.kvHeads, narrow.layers[1]!.hidden]).toEqual([4, 30]); // only the FFN narrowed there
        expect(narrow.layers[2]!.kvHeads).toBe(1);
        const runner = await PlanRunner.compile(ort, 'wasm', narrow, { layers: [0, 1, 2], width: plan }, attention);
        const ref = new LlamaReference(c, narrowByHand(c, weights, plan, means));
        let worst = 0;
        try {
          let got = await runner.step(prompt);
          let want: Float32Array = new Float32Array(0);
          prompt.forEach((t, p) => (want = ref.forward(t, p)));
          for (let s = 0; s <= 8; s++) {
            for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
            if (s === 8) break;
            const next = want.indexOf(Math.max(...want));
            got = await runner.step([next]);
            want = ref.forward(next, prompt.length + s);
          }
        } finally {
          await runner.release();
        }
        expect(worst).toBeLessThan(1e-4);
      });
    }
  }

  it("the compensation is the removed inputs' mean contribution: full output mean = narrowed output mean + bias", () => {
    const narrow = sliceWidth(prepared, width, (l) => means[l]);
    for (let l = 0; l < 3; l++) {
      const lw = weights.layers[l]!;
      const keptRows = new Set(width.kvHeads[l]!.flatMap((g) => Array.from({ length: 2 * hs }, (_, r) => g * 2 * hs + r)));
      // With input x = mean (the calibration expectation): W x over all inputs vs over the kept ones + bias.
      for (let o = 0; o < c.dim; o++) {
        let full = 0;
        let kept = 0;
        for (let ch = 0; ch < c.nHeads * hs; ch++) {
          const v = lw.wo[o * c.nHeads * hs + ch]! * means[l]!.wo[ch]!;
          full += v;
          if (keptRows.has(ch)) kept += v;
        }
        expect(kept + narrow.layers[l]!.woBias![o]!).toBeCloseTo(full, 5);
      }
    }
  });

  it('refuses widths that keep nothing, repeat or exceed the block', () => {
    const bad: WidthPlan[] = [
      { ...width, kvHeads: [[], [0], [1]] },
      { ...width, kvHeads: [[1, 1], [0], [1]] },
      { ...width, ffn: [[48], [0], [1]] },
      { ...width, ffn: [[0]] },
    ];
    for (const w of bad) expect(() => sliceWidth(prepared, w, (l) => means[l])).toThrow(WhittleError);
  });
});
