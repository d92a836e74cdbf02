/**
 * The config.json files of the models people run, as published on the Hugging Face Hub (kept
 * verbatim in models/synthetic/shapes/, which the synthetic generator also writes out), parse
 * unchanged to the shapes the model cards state.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../local.ts';
import { headSizeOf, type LlamaConfig } from '../../llama/types.ts';
import { llamaConfigFromHf } from './config.ts';

const published = (id: string): unknown => JSON.parse(readFileSync(join(REPO_ROOT, 'models', 'synthetic', 'shapes', id, 'config.json'), 'utf8'));

const EXPECTED: Record<string, LlamaConfig> = {
  'smollm2-135m': {
    dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152, maxSeqLen: 8192, ropeTheta: 100000,
    normEps: 1e-5, tiedEmbeddings: true, ropeLayout: 'half', bosTokenId: 0, eosTokenId: 0,
  },
  'smollm2-360m': {
    dim: 960, hiddenDim: 2560, nLayers: 32, nHeads: 15, nKvHeads: 5, vocabSize: 49152, maxSeqLen: 8192, ropeTheta: 100000,
    normEps: 1e-5, tiedEmbeddings: true, ropeLayout: 'half', bosTokenId: 0, eosTokenId: 0,
  },
  'qwen2.5-0.5b': {
    dim: 896, hiddenDim: 4864, nLayers: 24, nHeads: 14, nKvHeads: 2, vocabSize: 151936, maxSeqLen: 32768, ropeTheta: 1e6,
    normEps: 1e-6, tiedEmbeddings: true, ropeLayout: 'half', bosTokenId: 151643, eosTokenId: 151643, qkvBias: true,
  },
  'llama-3.2-1b': {
    dim: 2048, hiddenDim: 8192, nLayers: 16, nHeads: 32, nKvHeads: 8, vocabSize: 128256, maxSeqLen: 131072, ropeTheta: 500000,
    normEps: 1e-5, tiedEmbeddings: true, ropeLayout: 'half', bosTokenId: 128000, eosTokenId: 128001, headDim: 64,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 },
  },
};

describe.each(Object.entries(EXPECTED))('published %s config.json', (id, want) => {
  it('parses unchanged to the published shape', () => {
    expect(llamaConfigFromHf(published(id))).toEqual(want);
  });

  it('has 64-wide heads and grouped KV heads', () => {
    const c = llamaConfigFromHf(published(id));
    expect(headSizeOf(c)).toBe(64);
    expect(c.nHeads % c.nKvHeads).toBe(0);
  });

  it('takes a shorter context on request', () => {
    expect(llamaConfigFromHf(published(id), { maxContext: 2048 }).maxSeqLen).toBe(2048);
  });
});
