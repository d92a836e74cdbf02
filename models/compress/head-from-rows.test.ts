/**
 * A tied head built from the table's rows a chunk at a time (head-from-rows.ts) must be exactly
 * what transposing the whole table and compressing it gives (compressLinear, the reference
 * here: the path every held model takes), for every chunking, including a short last chunk.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import { compressLinear } from './compress-prepared.ts';
import { headFormStreams, headFromRows } from './head-from-rows.ts';
import type { WeightForm } from './kernel-choice.ts';

const vocab = 37;
const dim = 12;
const rand = createRng(3);
const table = Float32Array.from({ length: vocab * dim }, () => (rand() * 2 - 1) * 0.1);
table.fill(0, 5 * dim, 6 * dim); // an all-zero row: scale 1, as quantizePerChannelInt8 gives it
const transposed = new Float32Array(dim * vocab);
for (let v = 0; v < vocab; v++) for (let d = 0; d < dim; d++) transposed[d * vocab + v] = table[v * dim + d]!;
const readRows = async (first: number, count: number) => table.slice(first * dim, (first + count) * dim);

describe('headFromRows', () => {
  it.each([1, 4, 36, 37, 1000])('fp32 and int8 per channel equal the whole-table result (%s rows per chunk)', async (chunkRows) => {
    for (const form of [{ form: 'f32' }, { form: 'int8' }] as WeightForm[]) {
      const got = await headFromRows(readRows, vocab, dim, form, undefined, chunkRows);
      expect(got).toEqual(compressLinear(transposed, dim, vocab, form));
    }
  });

  it.each([1, 5, 37, 1000])('round-to-nearest MatMulNBits (8 and 4 bits, blocks past K padded) equals the whole-table result (%s rows per chunk)', async (chunkRows) => {
    // dim 12 < every block size: each column is one padded block.
    const forms: WeightForm[] = [{ form: 'nbits', bits: 8, blockSize: 32, accuracyLevel: 4 }, { form: 'nbits', bits: 4, blockSize: 64, accuracyLevel: 1 }];
    for (const form of forms) expect(await headFromRows(readRows, vocab, dim, form, undefined, chunkRows)).toEqual(compressLinear(transposed, dim, vocab, form));
    // K over several blocks (dim 80, blocks of 32: 3 blocks, the last padded).
    const wide = Float32Array.from({ length: vocab * 80 }, () => rand() * 2 - 1);
    const wideT = new Float32Array(80 * vocab);
    for (let v = 0; v < vocab; v++) for (let d = 0; d < 80; d++) wideT[d * vocab + v] = wide[v * 80 + d]!;
    const form: WeightForm = { form: 'nbits', bits: 4, blockSize: 32, accuracyLevel: 1 };
    expect(await headFromRows(async (f, c) => wide.slice(f * 80, (f + c) * 80), vocab, 80, form, undefined, chunkRows)).toEqual(compressLinear(wideT, 80, vocab, form));
  });

  it('leaves the forms it does not build (grids, refined methods) to the whole-table path', async () => {
    const grid: WeightForm = { form: 'int8', grid: { bits: 4, blockSize: 32 } };
    const hqq: WeightForm = { form: 'nbits', bits: 4, blockSize: 32, accuracyLevel: 1, method: 'hqq' };
    expect(headFormStreams(grid) || headFormStreams(hqq)).toBe(false);
    expect(await headFromRows(readRows, vocab, dim, grid)).toBeNull();
    expect(await headFromRows(readRows, vocab, dim, hqq)).toBeNull();
  });

  it('stops between chunks when aborted', async () => {
    const ac = new AbortController();
    let reads = 0;
    const aborting = async (first: number, count: number) => {
      if (++reads === 2) ac.abort();
      return readRows(first, count);
    };
    await expect(headFromRows(aborting, vocab, dim, { form: 'int8' }, ac.signal, 10)).rejects.toMatchObject({ code: 'ABORTED' });
    expect(reads).toBe(2);
  });
});
