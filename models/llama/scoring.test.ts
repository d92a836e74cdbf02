import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { createRng } from '../../core/random.ts';
import { readLlama2cCheckpoint } from '../import/llama2c/checkpoint.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../import/llama2c/tokenizer.ts';
import { readLocalModelFile } from '../local.ts';
import { LlamaReference } from '../reference/llama-ref.ts';
import { TextTokenizer } from '../../workers/text/tokenizer.ts';
import { applyBlock, planPerplexity, scoreBlocks } from '../reference/scoring-ref.ts';
import { addBlockSimilarity, calibrationWindows, choosePrunePlan, nllSum, rowCosine, similarityScores, similaritySums } from './scoring.ts';
import { randomLlama } from './testing/random-model.ts';
import type { LlamaWeights } from './types.ts';

/** A copy of `weights` whose block `l` adds nothing to the residual stream (wo = w2 = 0): the identity. */
function withIdentityBlock(weights: LlamaWeights, l: number): LlamaWeights {
  const layers = weights.layers.map((lw, i) => (i === l ? { ...lw, wo: new Float32Array(lw.wo.length), w2: new Float32Array(lw.w2.length) } : lw));
  return { ...weights, layers };
}

const randomTokens = (n: number, vocab: number, seed: number) => {
  const rand = createRng(seed);
  return [1, ...Array.from({ length: n - 1 }, () => 3 + Math.floor(rand() * (vocab - 3)))];
};

describe('block scores on a random model with an identity block', () => {
  const { config, weights } = randomLlama({ nLayers: 5, maxSeqLen: 64 }, 7);
  const identity = 2;
  const w = withIdentityBlock(weights, identity);
  const tokens = randomTokens(90, config.vocabSize, 3); // 2 windows: 64 + 26
  const scores = scoreBlocks(config, w, tokens);

  it('applyBlock stacked over all blocks reproduces the reference logits', () => {
    const kvDim = (config.nKvHeads * config.dim) / config.nHeads;
    const caches = config.nLayers;
    const kc = Array.from({ length: caches }, () => new Float32Array(config.maxSeqLen * kvDim));
    const vc = Array.from({ length: caches }, () => new Float32Array(config.maxSeqLen * kvDim));
    const ref = new LlamaReference(config, weights);
    for (let pos = 0; pos < 5; pos++) {
      const t = tokens[pos]!;
      const x = weights.tokenEmbedding.slice(t * config.dim, (t + 1) * config.dim);
      for (let l = 0; l < config.nLayers; l++) applyBlock(config, weights.layers[l]!, x, pos, kc[l]!, vc[l]!);
      const expected = ref.forward(t, pos);
      // final norm + head over our hidden state vs the reference's logits
      let ss = 0;
      for (const v of x) ss += v * v;
      const scale = 1 / Math.sqrt(ss / x.length + config.normEps);
      for (let r = 0; r < config.vocabSize; r += 7) {
        let acc = 0;
        for (let i = 0; i < config.dim; i++) acc += weights.lmHead[r * config.dim + i]! * weights.finalNorm[i]! * x[i]! * scale;
        expect(acc).toBeCloseTo(expected[r]!, 4);
      }
    }
  });

  it('the identity block has influence 0 and angular distance 0; the others do not', () => {
    expect(scores.positions).toBe(90);
    expect(scores.predictions).toBe(63 + 25);
    expect(scores.influence[identity]).toBeCloseTo(0, 6);
    expect(scores.angular[identity]).toBeLessThan(1e-3); // arccos near 1 amplifies float32 rounding
    for (let l = 0; l < config.nLayers; l++) {
      if (l === identity) continue;
      expect(scores.influence[l]).toBeGreaterThan(1e-3);
      expect(scores.angular[l]).toBeGreaterThan(1e-2);
      expect(scores.angular[l]).toBeLessThanOrEqual(1);
    }
  });

  it('removing the identity block leaves the perplexity unchanged (1e-6 relative); removing another changes it', () => {
    expect(Number.isFinite(scores.fullPerplexity)).toBe(true);
    expect(scores.fullPerplexity).toBeGreaterThan(1);
    expect(Math.abs(scores.perplexity[identity]! - scores.fullPerplexity) / scores.fullPerplexity).toBeLessThan(1e-6);
    for (let l = 0; l < config.nLayers; l++) if (l !== identity) expect(Math.abs(scores.perplexity[l]! / scores.fullPerplexity - 1)).toBeGreaterThan(1e-4);
  });

  it('the perplexity score is the reference perplexity of the plan without that block', () => {
    const windows = calibrationWindows(tokens, config.maxSeqLen);
    expect(windows.map((x) => x.length)).toEqual([64, 26]);
    const p = planPerplexity(config, w, { layers: [0, 1, 3, 4] }, windows);
    expect(p.perplexity).toBe(scores.perplexity[2]);
  });

  it.each(['influence', 'angular'] as const)('%s picks the identity block first', (criterion) => {
    const choice = choosePrunePlan(scores, { remove: 1, criterion });
    expect(choice.removed).toEqual([identity]);
    expect(choice.plan).toEqual({ layers: [0, 1, 3, 4] });
    const two = choosePrunePlan(scores, { remove: 2, criterion });
    expect(two.removed[0]).toBe(identity);
    expect(two.plan.layers).toHaveLength(3);
    expect(two.plan.layers).toEqual([0, 1, 2, 3, 4].filter((l) => !two.removed.includes(l)));
  });

  it('perplexity drops the block whose removal costs least (on random weights that need not be the identity)', () => {
    const choice = choosePrunePlan(scores, { remove: 1, criterion: 'perplexity' });
    const best = [1, 2, 3].reduce((a, b) => (scores.perplexity[b]! < scores.perplexity[a]! ? b : a));
    expect(choice.removed).toEqual([best]);
  });

  it('keepFirstLast (default) never drops block 0 or the last block, even when it is the identity', () => {
    const first = withIdentityBlock(weights, 0);
    const s = scoreBlocks(config, first, tokens.slice(0, 40), { perplexity: false });
    expect(s.perplexity).toEqual([]);
    expect(Number.isNaN(s.fullPerplexity)).toBe(true);
    expect(s.influence[0]).toBeCloseTo(0, 6);
    for (const criterion of ['influence', 'angular'] as const) {
      const kept = choosePrunePlan(s, { remove: 3, criterion });
      expect(kept.removed.sort()).toEqual([1, 2, 3]);
      expect(kept.plan.layers).toEqual([0, 4]);
      const free = choosePrunePlan(s, { remove: 1, criterion, keepFirstLast: false });
      expect(free.removed).toEqual([0]);
      expect(free.plan.layers).toEqual([1, 2, 3, 4]);
    }
  });

  it('ratio rounds to a block count; too many blocks or bad options are INVALID_ARGUMENT', () => {
    expect(choosePrunePlan(scores, { ratio: 0.4, criterion: 'influence' }).removed).toHaveLength(2);
    expect(choosePrunePlan(scores, { remove: 0 }).plan).toEqual({ layers: [0, 1, 2, 3, 4] });
    const bad = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(WhittleError);
        expect((e as WhittleError).code).toBe('INVALID_ARGUMENT');
        return;
      }
      throw new Error('expected a throw');
    };
    bad(() => choosePrunePlan(scores, { remove: 4 })); // 5 blocks, first+last kept: at most 3
    expect(choosePrunePlan(scores, { remove: 4, keepFirstLast: false }).plan.layers).toHaveLength(1);
    bad(() => choosePrunePlan(scores, { remove: 5, keepFirstLast: false }));
    bad(() => choosePrunePlan(scores, { remove: 1.5 }));
    bad(() => choosePrunePlan(scores, {}));
    bad(() => choosePrunePlan(scores, { remove: 1, ratio: 0.2 }));
    bad(() => choosePrunePlan(scoreBlocks(config, w, tokens.slice(0, 10), { perplexity: false }), { remove: 1, criterion: 'perplexity' }));
    bad(() => scoreBlocks(config, w, []));
    bad(() => scoreBlocks(config, w, [1, config.vocabSize]));
  });
});

describe('choosePrunePlan ranking', () => {
  it('ranks lowest first; ties and infinite perplexities drop the later block first; NaN counts as most important', () => {
    const scores = { nLayers: 6, positions: 0, predictions: 0, influence: [0, 0.5, NaN, 0.1, 0.1, 0], angular: [], perplexity: [1, Infinity, Infinity, 2, NaN, 1], fullPerplexity: 1, timing: { similarityMs: 0, perplexityMs: 0 } };
    expect(choosePrunePlan(scores, { remove: 3, criterion: 'perplexity' }).removed).toEqual([3, 2, 1]);
    expect(choosePrunePlan(scores, { remove: 4, criterion: 'perplexity' }).removed).toEqual([3, 2, 1, 4]);
    expect(choosePrunePlan(scores, { remove: 4, criterion: 'influence' }).removed).toEqual([4, 3, 1, 2]);
    expect(choosePrunePlan(scores, { remove: 2, criterion: 'influence', keepFirstLast: false }).removed).toEqual([5, 0]);
  });
});

describe('block scores on stories260K', () => {
  const { config, weights } = readLlama2cCheckpoint(readLocalModelFile('stories260K', 'stories260K.bin'));
  const tok = TextTokenizer.fromJson(llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile('stories260K', 'tok512.bin'), config.vocabSize)));
  const text = 'Once upon a time, there was a little girl named Lily. She loved to play in the park with her dog Max. One day, Lily saw a big red ball under a tree. She ran to get it, but Max was faster. Lily laughed and said, "Good dog, Max!" They played with the ball until the sun went down. Then they went home and had a warm bowl of soup.';
  const tokens = [config.bosTokenId, ...tok.encode(text)];

  it('computes finite scores for every block; removing any block costs perplexity', () => {
    const s = scoreBlocks(config, weights, tokens);
    expect(s.positions).toBe(tokens.length);
    for (const key of ['influence', 'angular', 'perplexity'] as const) {
      expect(s[key]).toHaveLength(5);
      for (const v of s[key]) expect(Number.isFinite(v)).toBe(true);
    }
    for (const v of s.influence) expect(v).toBeGreaterThan(0);
    // A trained model predicts its own kind of text far better than chance (vocab 512).
    expect(s.fullPerplexity).toBeGreaterThan(1);
    expect(s.fullPerplexity).toBeLessThan(20);
    for (const p of s.perplexity) expect(p).toBeGreaterThan(s.fullPerplexity);
    const choice = choosePrunePlan(s, { remove: 1, criterion: 'perplexity' });
    expect(choice.plan.layers).toHaveLength(4);
    expect(choice.removed[0]).toBe([1, 2, 3].reduce((a, b) => (s.perplexity[b]! < s.perplexity[a]! ? b : a)));
  });
});

describe('the pure arithmetic the ONNX scoring path uses', () => {
  it('rowCosine: per row, zero rows defined, clamped', () => {
    const a = Float32Array.of(1, 0, 0, 0, 3, 4);
    const b = Float32Array.of(2, 0, 0, 0, -3, -4);
    expect(rowCosine(a, b, 0, 2)).toBe(1); // [1, 0] vs [2, 0]
    expect(rowCosine(a, b, 1, 2)).toBe(1); // both zero: an unchanged zero vector
    expect(rowCosine(a, b, 2, 2)).toBe(-1);
    expect(rowCosine(Float32Array.of(1, 1), Float32Array.of(0, 0), 0, 2)).toBe(0);
  });

  it('addBlockSimilarity + similarityScores: 1 - mean cos and mean arccos / pi over positions', () => {
    const sums = similaritySums(2);
    addBlockSimilarity(sums, 1, Float32Array.of(1, 0, 0, 1), Float32Array.of(1, 0, 1, 0), 2); // cos 1 and 0
    const { influence, angular } = similarityScores(sums, 2);
    expect(influence).toEqual([1, 0.5]);
    expect(angular[0]).toBe(0);
    expect(angular[1]).toBeCloseTo(0.25, 12); // (0 + pi/2) / pi / 2
  });

  it('nllSum is -log softmax at the targets, stable for large logits', () => {
    const logits = Float32Array.of(0, 2, 1000, 1002); // the same row shifted by 1000 (exp(1000) overflows)
    expect(nllSum(logits, 2, [1, 0])).toBeCloseTo(Math.log(1 + Math.exp(-2)) + Math.log(1 + Math.exp(2)), 12);
  });
});
