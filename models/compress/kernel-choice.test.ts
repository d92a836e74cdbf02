/**
 * Settings -> weight forms -> graph nodes: 'auto' follows the measured table per backend, the
 * head never goes below 8 bits, bad settings are INVALID_ARGUMENT, and buildSegment emits the
 * node each form needs with its attributes (accuracy_level always written).
 */
import { describe, expect, it } from 'vitest';
import { buildSegment } from '../llama/graph.ts';
import { prepareWeights } from '../llama/prepare.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import { fullPlan, type LlamaConfig, type WeightsSetting } from '../llama/types.ts';
import { BIG_HEAD_BYTES, blockLinearParams, DEQUANTIZED_Q4_LIMIT, resolveForms } from './kernel-choice.ts';

describe('resolveForms', () => {
  it("'auto' on WASM: q8 -> int8 DynamicQuantizeMatMul, q4 -> its grid dequantized when small, requantized to int8 when large, head fp32", () => {
    expect(resolveForms({ linear: 'q8' }, 'wasm')).toEqual({ block: { form: 'int8' }, head: { form: 'f32' } });
    expect(resolveForms({ linear: 'q4', group: 64 }, 'wasm')).toEqual({ block: { form: 'int8', grid: { bits: 4, blockSize: 64 } }, head: { form: 'f32' } });
    // Sized by the model: the exact grid in fp32 while the block linears' fp32 copy stays small.
    const small = { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, maxSeqLen: 256 } as LlamaConfig; // stories15M: 14M block params, 57 MB fp32
    const smollm = { ...small, dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3 }; // 106M, 425 MB fp32
    expect(blockLinearParams(small)).toBe(6 * (288 * 288 * 3 + 288 * 288 + 288 * 768 * 3));
    expect(blockLinearParams(smollm) * 4).toBeGreaterThan(DEQUANTIZED_Q4_LIMIT);
    expect(resolveForms({ linear: 'q4', group: 64 }, 'wasm', small).block).toEqual({ form: 'dequantized', bits: 4, blockSize: 64 });
    expect(resolveForms({ linear: 'q4', group: 64 }, 'wasm', smollm).block).toEqual({ form: 'int8', grid: { bits: 4, blockSize: 64 } });
    expect(resolveForms({ linear: 'q4' }, 'webgpu', small).block.form).toBe('nbits');
    expect(resolveForms({ linear: 'q4', kernel: 'dequantized' }, 'wasm').block).toEqual({ form: 'dequantized', bits: 4, blockSize: 32 });
    expect(resolveForms({ linear: 'q4', head: 'q8' }, 'wasm').head).toEqual({ form: 'int8' });
  });

  it('a compressed model with a big head (BIG_HEAD_BYTES) gets an int8 head on WASM unless asked for fp32; fp32 models and small heads keep fp32', () => {
    const stories15M = { dim: 288, hiddenDim: 768, nLayers: 6, nHeads: 6, nKvHeads: 6, vocabSize: 32000, maxSeqLen: 256 } as LlamaConfig; // 37 MB fp32 head
    const smollm = { ...stories15M, dim: 576, hiddenDim: 1536, nLayers: 30, nHeads: 9, nKvHeads: 3, vocabSize: 49152 }; // 113 MB fp32 head
    expect(stories15M.vocabSize * stories15M.dim * 4).toBeLessThan(BIG_HEAD_BYTES);
    expect(smollm.vocabSize * smollm.dim * 4).toBeGreaterThanOrEqual(BIG_HEAD_BYTES);
    expect(resolveForms({ linear: 'q8' }, 'wasm', stories15M).head).toEqual({ form: 'f32' });
    expect(resolveForms({ linear: 'q8' }, 'wasm', smollm).head).toEqual({ form: 'int8' });
    expect(resolveForms({ linear: 'q4' }, 'wasm', smollm).head).toEqual({ form: 'int8' }); // 8 bits per channel, not the block's grid
    expect(resolveForms({ linear: 'q8', head: 'f32' }, 'wasm', smollm).head).toEqual({ form: 'f32' });
    expect(resolveForms({ linear: 'f32' }, 'wasm', smollm).head).toEqual({ form: 'f32' });
  });

  it("'auto' on WebGPU: MatMulNBits with accuracy_level 1 unless asked, 8-bit head", () => {
    expect(resolveForms({ linear: 'q4' }, 'webgpu')).toEqual({
      block: { form: 'nbits', bits: 4, blockSize: 32, accuracyLevel: 1 },
      head: { form: 'nbits', bits: 8, blockSize: 32, accuracyLevel: 1 },
    });
    expect(resolveForms({ linear: 'q8', group: 128, accuracyLevel: 4 }, 'webgpu').block).toEqual({ form: 'nbits', bits: 8, blockSize: 128, accuracyLevel: 4 });
  });

  it('the head follows an explicit kernel at 8 bits, never 4', () => {
    expect(resolveForms({ linear: 'q4', kernel: 'nbits', head: 'q8' }, 'wasm').head).toEqual({ form: 'nbits', bits: 8, blockSize: 32, accuracyLevel: 1 });
    expect(resolveForms({ linear: 'q4', kernel: 'dequantized', head: 'q8' }, 'wasm').head).toEqual({ form: 'dequantized', bits: 8, blockSize: 32 });
  });

  it.each([
    { linear: 'q3' }, { linear: 'q4', group: 16 }, { linear: 'q8', head: 'q4' }, { linear: 'q8', kernel: 'fast' }, { linear: 'q4', accuracyLevel: 0 },
  ])('rejects %j with INVALID_ARGUMENT', (s) => {
    expect(() => resolveForms(s as unknown as WeightsSetting, 'wasm')).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('buildSegment with compressed prepared weights', () => {
  const { config, weights } = randomLlama({ dim: 64, hiddenDim: 96, nHeads: 4, nKvHeads: 2 }, 3);
  const segment = { layers: fullPlan(config).layers, embed: true, head: 'final' as const, hiddenOut: false };
  /** The built ModelProto as text, to find op types in (node names are `<op>_<index>`, op types are bare). */
  const text = (s: WeightsSetting | undefined) => new TextDecoder('latin1').decode(buildSegment(prepareWeights(config, weights, s ? { weights: s } : {}), segment, 'onnx').built.model);

  const ops = (t: string, op: string) => t.match(new RegExp(`${op}(?!_)`, 'g'))?.length ?? 0;

  it('emits one node per linear whatever the form (same node count as fp32)', () => {
    const count = (s?: WeightsSetting) => buildSegment(prepareWeights(config, weights, s ? { weights: s } : {}), segment, 'onnx').nodeCount;
    const base = count();
    for (const s of [{ linear: 'q8' }, { linear: 'q4', kernel: 'nbits' }, { linear: 'q4' }] as WeightsSetting[]) expect(count(s)).toBe(base);
  });

  it('q8 auto on WASM: DynamicQuantizeMatMul for the blocks, MatMul for the head', () => {
    const t = text({ linear: 'q8' });
    expect(ops(t, 'DynamicQuantizeMatMul')).toBe(4 * config.nLayers);
    expect(t).not.toContain('MatMulNBits');
  });

  it('q4 nbits: MatMulNBits with K, N, bits, block_size and accuracy_level written out', () => {
    const t = text({ linear: 'q4', kernel: 'nbits', group: 64, head: 'q8' });
    expect(ops(t, 'MatMulNBits')).toBe(4 * config.nLayers + 1);
    for (const attr of ['accuracy_level', 'block_size', 'bits']) expect(t).toContain(attr);
  });
});
