/**
 * Sparsity (issue #14): Wanda / magnitude masks against an independent straightforward
 * implementation written here (torch's [out, in] layout, norms from an explicit activation
 * matrix, Array.prototype.sort, which is stable); the sparse encoding's round trip, size and
 * hostile inputs; sparse variants of every stored form reading back to exactly what a load with
 * the same setting prepares, with masked weights exactly 0 after quantization.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { prepareWeights, prepareWeightsFrom, type PreparedWeights } from '../llama/prepare.ts';
import { inMemoryReader } from '../llama/weight-reader.ts';
import { randomLlama } from '../llama/testing/random-model.ts';
import type { WeightsSetting } from '../llama/types.ts';
import { dequantizeBlockwise } from './blockwise.ts';
import type { LinearWeight } from './linear.ts';
import { dequantizePerChannelInt8 } from './per-channel.ts';
import { decodeSparse, encodeSparse } from './sparse-encoding.ts';
import { sparsifyPrepared } from './sparsity-prepared.ts';
import { applyMask, sparsityMask, type SparsitySetting } from './sparsity-select.ts';
import { readVariant, writeVariant, type VariantSource } from './variant.ts';
import { settingTag, storagePlan, toKernelForms, withStoredHead } from './variant-forms.ts';
import { createRng } from '../../core/random.ts';
import { joinParts } from './testing/join-parts.ts';

/**
 * The reference: W as torch's [out][in] rows, X [rows][in] activations; Wanda's metric
 * |W| * ||X[:, k]||_2 per row; unstructured prunes the first floor(ratio * in) of a stable sort,
 * 2:4 the first two of a stable sort of each group of four. Returns kept[out][in].
 */
function referenceMask(W: number[][], X: number[][] | null, pattern: '2:4' | 'unstructured', ratio: number): boolean[][] {
  const inF = W[0]!.length;
  const norm = Array.from({ length: inF }, (_, k) => (X ? Math.sqrt(X.reduce((s, row) => s + row[k]! ** 2, 0)) : 1));
  return W.map((row) => {
    const metric = row.map((w, k) => Math.abs(w) * norm[k]!);
    const kept = row.map(() => true);
    if (pattern === 'unstructured') {
      const idx = metric.map((m, k) => ({ m, k })).sort((a, b) => a.m - b.m);
      for (const { k } of idx.slice(0, Math.floor(inF * ratio))) kept[k] = false;
    } else {
      for (let g = 0; g < inF; g += 4) {
        const idx = [0, 1, 2, 3].map((i) => ({ m: metric[g + i]!, k: g + i })).sort((a, b) => a.m - b.m);
        kept[idx[0]!.k] = false;
        kept[idx[1]!.k] = false;
      }
    }
    return kept;
  });
}

describe('Wanda and magnitude masks = the reference', () => {
  const K = 24;
  const N = 7;
  const R = 11;
  const r = createRng(5);
  // Weights on a coarse grid, so equal |W| * norm ties occur and their order is tested too.
  const W = Array.from({ length: N }, () => Array.from({ length: K }, () => Math.round((r() - 0.5) * 8) / 4));
  const X = Array.from({ length: R }, () => Array.from({ length: K }, (_, k) => (r() - 0.5) * (k % 3 === 0 ? 4 : 1)));
  // MatMul's B [K, N]: B[k][n] = W[n][k].
  const B = Float32Array.from({ length: K * N }, (_, i) => W[i % N]![Math.floor(i / N)]!);
  // The code under test gets sqrt(mean square): a different positive scale than the reference's sum.
  const norms = Float32Array.from({ length: K }, (_, k) => Math.sqrt(X.reduce((s, row) => s + row[k]! ** 2, 0) / R));
  const asRows = (keep: Uint8Array) => Array.from({ length: N }, (_, n) => Array.from({ length: K }, (_, k) => keep[k * N + n] === 1));
  const cases: [string, SparsitySetting, number][] = [
    ['unstructured 50%', { pattern: 'unstructured' }, 0.5],
    ['unstructured 30%', { pattern: 'unstructured', ratio: 0.3 }, 0.3],
    ['unstructured 70%', { pattern: 'unstructured', ratio: 0.7 }, 0.7],
    ['2:4', { pattern: '2:4' }, 0.5],
  ];
  for (const [name, setting, ratio] of cases) {
    it(`wanda ${name}`, () => {
      const keep = sparsityMask(B, K, N, norms, setting);
      expect(asRows(keep)).toEqual(referenceMask(W, X, setting.pattern, ratio));
    });
    it(`magnitude ${name}`, () => {
      const keep = sparsityMask(B, K, N, null, { ...setting, method: 'magnitude' });
      expect(asRows(keep)).toEqual(referenceMask(W, null, setting.pattern, ratio));
    });
  }
  it('applyMask zeroes exactly the dropped weights', () => {
    const keep = sparsityMask(B, K, N, norms, { pattern: '2:4' });
    const m = applyMask(B, keep);
    for (let i = 0; i < B.length; i++) expect(m[i]).toBe(keep[i] ? B[i] : 0);
  });
  it('bad settings and shapes are typed errors', () => {
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (err) {
        expect(err).toBeInstanceOf(WhittleError);
        return (err as WhittleError).code;
      }
      return 'no error';
    };
    expect(code(() => sparsityMask(B, K, N, norms, { pattern: '2:4', ratio: 0.6 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => sparsityMask(B, K, N, norms, { pattern: 'unstructured', ratio: 1 }))).toBe('INVALID_ARGUMENT');
    expect(code(() => sparsityMask(B, K, N, norms, { pattern: '1:2' as '2:4' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => sparsityMask(B, K, N, norms.subarray(1), { pattern: '2:4' }))).toBe('INVALID_ARGUMENT');
    expect(code(() => sparsityMask(new Float32Array(6 * 2), 6, 2, null, { pattern: '2:4' }))).toBe('UNSUPPORTED');
    expect(code(() => sparsifyPrepared(prepareWeights(randomLlama().config, randomLlama().weights), { pattern: '2:4' }))).toBe('INVALID_ARGUMENT'); // wanda without norms
  });
});

describe('sparse encoding', () => {
  const r = createRng(11);
  const rows = 5;
  const cols = 12;
  const fill = (row: number, c: number) => (row * 7 + (c >> 2)) % 16; // a per-block fill, like a zero point
  const twoFour = Uint32Array.from({ length: rows * cols }, (_, t) => {
    const row = Math.floor(t / cols);
    const c = t % cols;
    // positions (c % 4) 1 and 3 stored in odd groups, 0 and 2 in even ones; the rest fill, and group 2 of row 0 all fill
    const keep = (row === 0 && c >> 2 === 2) ? false : (c >> 2) % 2 ? c % 2 === 1 : c % 2 === 0;
    return keep ? 16 + Math.floor(r() * 100) : fill(row, c);
  });
  it('2:4 round-trips, two values a group, 8/3 index bits a group', () => {
    const { index, values } = encodeSparse(twoFour, fill, rows, cols, '2:4');
    expect(values.length).toBe((rows * cols) / 2);
    expect(index.length).toBe(Math.ceil((rows * cols) / 4 / 3));
    expect(decodeSparse(index, values, fill, rows, cols, '2:4', 't')).toEqual(twoFour);
  });
  it('unstructured round-trips with one bit a weight and only the non-fill values', () => {
    const codes = Uint32Array.from({ length: rows * cols }, (_, t) => (r() < 0.4 ? 100 + t : fill(Math.floor(t / cols), t % cols)));
    const nonFill = codes.filter((v) => v >= 100).length;
    const { index, values } = encodeSparse(codes, fill, rows, cols, 'unstructured');
    expect(values.length).toBe(nonFill);
    expect(index.length).toBe(Math.ceil((rows * cols) / 8));
    expect(decodeSparse(index, values, fill, rows, cols, 'unstructured', 't')).toEqual(codes);
  });
  it('refuses a matrix that is not 2:4', () => {
    const dense = Uint32Array.from({ length: rows * cols }, () => 99);
    expect(() => encodeSparse(dense, fill, rows, cols, '2:4')).toThrow(/not 2:4 sparse/);
  });
  it('hostile indexes are BAD_MODEL before decoding', () => {
    const { index, values } = encodeSparse(twoFour, fill, rows, cols, '2:4');
    const badByte = index.slice();
    badByte[0] = 216;
    expect(() => decodeSparse(badByte, values, fill, rows, cols, '2:4', 't')).toThrow(/not three pairs/);
    expect(() => decodeSparse(index, values.subarray(1), fill, rows, cols, '2:4', 't')).toThrow(/stores 30 values/);
    expect(() => decodeSparse(index.subarray(1), values, fill, rows, cols, '2:4', 't')).toThrow(/index has/);
    const u = encodeSparse(twoFour, fill, rows, cols, 'unstructured');
    expect(() => decodeSparse(u.index, u.values.subarray(1), fill, rows, cols, 'unstructured', 't')).toThrow(/marks \d+ values/);
    const past = encodeSparse(new Uint32Array(3 * 4).fill(1), () => 0, 3, 4, 'unstructured');
    past.index[1]! |= 0x80; // bit 15 of a 12-element matrix
    expect(() => decodeSparse(past.index, past.values, () => 0, 3, 4, 'unstructured', 't')).toThrow(WhittleError);
  });
});

const SOURCE: VariantSource = { id: 'random', revision: 'r1', format: 'hf' };
const plain = (p: PreparedWeights) => JSON.parse(JSON.stringify(p, (_k, v: unknown) => (ArrayBuffer.isView(v) ? { type: v.constructor.name, values: Array.from(v as unknown as ArrayLike<number>) } : v))) as unknown;
const dense = (w: LinearWeight): Float32Array => (w instanceof Float32Array ? w : w.kind === 'int8' ? dequantizePerChannelInt8(w.weight) : dequantizeBlockwise(w.weight));

describe('sparse variants (random GQA model, magnitude masks applied at load)', () => {
  // dim 40, hidden 72: K not a multiple of 32 or 64, so MatMulNBits' last block is padded.
  const { config, weights } = randomLlama({ dim: 40, hiddenDim: 72, nHeads: 4, nKvHeads: 2, vocabSize: 50, qkvBias: true, tiedEmbeddings: false }, 7);
  const variant = (setting: WeightsSetting, backend: 'wasm' | 'webgpu') => {
    const plan = storagePlan(setting, backend);
    return joinParts(writeVariant(withStoredHead(prepareWeights(config, weights, { weights: plan.prepare, backend }), plan), setting, SOURCE));
  };
  for (const pattern of ['2:4', 'unstructured'] as const) {
    for (const base of [{ linear: 'f32' }, { linear: 'q8' }, { linear: 'q8', kernel: 'nbits' }, { linear: 'q4', group: 32 }, { linear: 'q4', group: 64, method: 'hqq' }] as WeightsSetting[]) {
      for (const backend of ['wasm', 'webgpu'] as const) {
        const setting: WeightsSetting = { ...base, sparsity: { pattern, method: 'magnitude' } };
        it(`${settingTag(setting)} on ${backend}: reads back to the load's weights, masked weights exactly 0, fewer bytes than dense`, () => {
          const bytes = variant(setting, backend);
          const { prepared, info } = readVariant(bytes);
          expect(info.version).toBe(2);
          expect(info.sparsity).toEqual({ pattern, ratio: 0.5, method: 'magnitude' });
          const expected = prepareWeights(config, weights, { weights: setting, backend });
          expect(plain(toKernelForms(prepared, info.setting, backend))).toEqual(plain(expected));
          // The mask survives quantization: every weight the fp32 mask dropped dequantizes to 0.
          const masked = prepareWeights(config, weights, { weights: { linear: 'f32', sparsity: setting.sparsity! } });
          for (const [i, l] of prepared.layers.entries()) {
            const m = masked.layers[i]!.gateUp as Float32Array;
            const d = dense(l.gateUp);
            for (let j = 0; j < m.length; j++) if (m[j] === 0) expect(d[j]).toBe(0);
          }
          expect(bytes.byteLength).toBeLessThan(variant(base, backend).byteLength);
        });
      }
    }
  }
  it('a 50% sparse fp32 variant is at most 60% of the dense bytes (block linears dominate)', () => {
    const big = randomLlama({ dim: 64, hiddenDim: 172, nLayers: 4, vocabSize: 64 }, 3);
    const file = (s: WeightsSetting) => joinParts(writeVariant(prepareWeights(big.config, big.weights, { weights: s }), s, SOURCE)).byteLength;
    const d = file({ linear: 'f32' });
    expect(file({ linear: 'f32', sparsity: { pattern: '2:4', method: 'magnitude' } }) / d).toBeLessThanOrEqual(0.6);
    expect(file({ linear: 'f32', sparsity: { pattern: 'unstructured', method: 'magnitude' } }) / d).toBeLessThanOrEqual(0.6);
  });
  it("'wanda' at load is refused (it needs activations), not silently magnitude", () => {
    expect(() => prepareWeights(config, weights, { weights: { linear: 'q8', sparsity: { pattern: '2:4' } } })).toThrow(/needs the model's activations/);
  });
  it('writing dense weights as 2:4 is refused', () => {
    const setting: WeightsSetting = { linear: 'f32', sparsity: { pattern: '2:4', method: 'magnitude' } };
    expect(() => writeVariant(prepareWeights(config, weights), setting, SOURCE)).toThrow(/not 2:4 sparse/);
  });
});

describe('hostile sparse variant files: typed errors before anything is decoded', () => {
  const { config, weights } = randomLlama({ tiedEmbeddings: true }, 9);
  const setting: WeightsSetting = { linear: 'q4', sparsity: { pattern: 'unstructured', method: 'magnitude' } };
  const plan = storagePlan(setting, 'wasm');
  const good = joinParts(writeVariant(withStoredHead(prepareWeights(config, weights, { weights: plan.prepare, backend: 'wasm' }), plan), setting, SOURCE));
  const headerLen = Number(new DataView(good).getBigUint64(0, true));
  const header = () => JSON.parse(new TextDecoder().decode(new Uint8Array(good, 8, headerLen))) as Record<string, Record<string, unknown>>;
  const withHeader = (h: unknown): ArrayBuffer => {
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.byteLength + (good.byteLength - 8 - headerLen));
    new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    out.set(json, 8);
    out.set(new Uint8Array(good, 8 + headerLen), 8 + json.byteLength);
    return out.buffer;
  };
  const edit = (f: (h: Record<string, Record<string, unknown>>) => void) => {
    const h = header();
    f(h);
    return withHeader(h);
  };
  const code = (f: () => unknown): string => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(WhittleError);
      return `${(err as WhittleError).code}: ${(err as WhittleError).message}`;
    }
    return 'no error';
  };
  it('the good file reads', () => expect(code(() => readVariant(good))).toBe('no error'));
  it('sparse values claiming a huge count (shape past the file) are refused by the header check', () =>
    expect(code(() => readVariant(edit((h) => (h['layers.0.qkv.q.sparse_values']!.shape = [2 ** 40]))))).toMatch(/^BAD_MODEL: /));
  it("a bitmask whose popcount is not the values' count", () => {
    const bytes = new Uint8Array(good.slice(0));
    const e = header()['layers.1.down.q.sparse_index']!.data_offsets as [number, number];
    bytes[8 + headerLen + e[0]]! ^= 1; // one more or one fewer kept weight
    expect(code(() => readVariant(bytes.buffer))).toMatch(/^BAD_MODEL: .*layers.1.down.q.sparse_index marks \d+ kept weights/);
  });
  it('sparsity metadata that is not the setting', () =>
    expect(code(() => readVariant(edit((h) => (h.__metadata__!.sparsity = JSON.stringify({ pattern: '2:4', ratio: 0.5, method: 'magnitude' })))))).toMatch(/^BAD_MODEL: .*does not match/));
  it('a sparse file claiming version 1', () => expect(code(() => readVariant(edit((h) => (h.__metadata__!.whittle_version = '1'))))).toMatch(/^BAD_MODEL: .*version 1 file/));
  it('a dense tensor where the sparse pair belongs', () =>
    expect(code(() => readVariant(edit((h) => {
      h['layers.0.wo.q'] = h['layers.0.wo.q.sparse_index']!;
      delete h['layers.0.wo.q.sparse_index'];
    })))).toMatch(/^BAD_MODEL: .*unexpected tensor layers.0.wo.q/));
});

describe('magnitude sparsity while streaming layers (prepareWeightsFrom)', () => {
  it('masks each layer as it is read: the same weights as prepareWeights', async () => {
    const { config, weights } = randomLlama({ dim: 32, hiddenDim: 48 }, 4);
    const setting: WeightsSetting = { linear: 'q4', group: 32, sparsity: { pattern: 'unstructured', ratio: 0.6, method: 'magnitude' } };
    const streamed = await prepareWeightsFrom(config, inMemoryReader(weights), { weights: setting, backend: 'wasm' });
    expect(plain(streamed)).toEqual(plain(prepareWeights(config, weights, { weights: setting, backend: 'wasm' })));
    // 60% of each output's weights are zero in the fp32 mask the grid was fitted after.
    const fp32 = await prepareWeightsFrom(config, inMemoryReader(weights), { weights: { linear: 'f32', sparsity: setting.sparsity! } });
    const down = fp32.layers[1]!.down as Float32Array;
    expect(down.filter((v) => v === 0).length).toBe(Math.floor(0.6 * 48) * 32);
  });
});
