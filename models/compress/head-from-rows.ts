/**
 * A tied LM head [dim, vocab] built from the embedding table's rows [vocab, dim] a chunk at a
 * time, so the table itself (1.05 GB fp32 at Llama-3.2-1B's 128256 x 2048) never exists in
 * memory: only one chunk of rows and the head in its final form do. The result is bit-identical
 * to transposing the whole table and compressing it (compressLinear with the same form): each
 * output column of the head is one row of the table, and both supported forms are per column.
 *
 * Forms: 'f32' (the transposed copy), 'int8' per channel without a grid (q8's head on WASM) and
 * round-to-nearest 'nbits' (the 8-bit head WebGPU runs): MatMulNBits packs each output column's
 * blocks along K, i.e. along one table row, so a chunk of rows quantizes to a run of whole columns.
 * A grid (int8 standing for 4 bits) or a refined method ('hqq', 'awq') is not built here: null
 * tells the caller to take the whole-table path.
 *
 * @example
 * const head = await headFromRows((first, count) => reader.embeddingRange!(first, count), vocab, dim, { form: 'int8' });
 */
import { throwIfAborted } from '../../core/errors.ts';
import { releaseNow } from '../../core/release.ts';
import type { WeightForm } from './kernel-choice.ts';
import type { LinearWeight } from './linear.ts';
import { QMAX } from './per-channel.ts';
import { blobBytes, blockCount, quantizeBlockwise, zeroPointBytes } from './blockwise.ts';

/** Reads rows first .. first + count - 1 of the table: [count, dim], a new array the caller may release. */
export type RowRangeReader = (first: number, count: number) => Promise<Float32Array>;

/** fp32 rows held per read: big enough for few reads, small beside any head this is for. */
const CHUNK_BYTES = 8 * 2 ** 20;

/** Whether headFromRows builds `form` (else the caller transposes the whole table). */
export function headFormStreams(form: WeightForm | null | undefined): boolean {
  return !form || form.form === 'f32' || (form.form === 'int8' && !form.grid && form.method !== 'awq') || (form.form === 'nbits' && form.method === undefined);
}

/** The head [dim, vocab] in `form` (null: headFormStreams(form) is false), from the table's rows. */
export async function headFromRows(readRows: RowRangeReader, vocab: number, dim: number, form: WeightForm | null | undefined, signal?: AbortSignal, chunkRows = Math.max(1, Math.floor(CHUNK_BYTES / (dim * 4)))): Promise<LinearWeight | null> {
  if (!headFormStreams(form)) return null;
  if (form?.form === 'nbits') return blockwiseHeadFromRows(readRows, vocab, dim, form, signal, chunkRows);
  const int8 = form?.form === 'int8';
  const f32 = int8 ? null : new Float32Array(dim * vocab);
  const b = int8 ? new Int8Array(dim * vocab) : null;
  const scales = int8 ? new Float32Array(vocab) : null;
  for (let first = 0; first < vocab; first += chunkRows) {
    throwIfAborted(signal);
    const count = Math.min(chunkRows, vocab - first);
    const rows = await readRows(first, count); // [count, dim]
    for (let r = 0; r < count; r++) {
      const v = first + r; // the head's output column
      const row = rows.subarray(r * dim, (r + 1) * dim);
      if (f32) {
        for (let d = 0; d < dim; d++) f32[d * vocab + v] = row[d]!;
        continue;
      }
      // As quantizePerChannelInt8 does for column v of the transposed table: max |w| -> 127.
      let amax = 0;
      for (let d = 0; d < dim; d++) amax = Math.max(amax, Math.abs(row[d]!));
      const scale = amax === 0 ? 1 : Math.fround(amax / QMAX);
      scales![v] = scale;
      for (let d = 0; d < dim; d++) b![d * vocab + v] = Math.min(QMAX, Math.max(-QMAX, Math.round(row[d]! / scale)));
    }
    releaseNow(rows); // the chunk is the reader's fresh read (RowRangeReader)
  }
  return f32 ?? { kind: 'int8', weight: { K: dim, N: vocab, b: b!, scales: scales! } };
}

/** headFromRows for a round-to-nearest MatMulNBits head: each chunk of rows [count, dim] is the head's columns first .. first + count - 1. */
async function blockwiseHeadFromRows(readRows: RowRangeReader, vocab: number, dim: number, form: Extract<WeightForm, { form: 'nbits' }>, signal: AbortSignal | undefined, chunkRows: number): Promise<LinearWeight> {
  const { bits, blockSize } = form;
  const nBlocks = blockCount(dim, blockSize);
  const colBytes = nBlocks * blobBytes(blockSize, bits);
  const zpBytes = zeroPointBytes(nBlocks, bits);
  const b = new Uint8Array(vocab * colBytes);
  const scales = new Float32Array(vocab * nBlocks);
  const zeroPoints = new Uint8Array(vocab * zpBytes);
  for (let first = 0; first < vocab; first += chunkRows) {
    throwIfAborted(signal);
    const count = Math.min(chunkRows, vocab - first);
    const rows = await readRows(first, count); // [count, dim]
    const columns = new Float32Array(dim * count); // the head's [dim, count] slice
    for (let r = 0; r < count; r++) for (let d = 0; d < dim; d++) columns[d * count + r] = rows[r * dim + d]!;
    releaseNow(rows);
    const q = quantizeBlockwise(columns, dim, count, bits, blockSize);
    b.set(q.b, first * colBytes);
    scales.set(q.scales, first * nBlocks);
    zeroPoints.set(q.zeroPoints, first * zpBytes);
  }
  return { kind: 'nbits', weight: { K: dim, N: vocab, bits, blockSize, b, scales, zeroPoints }, accuracyLevel: form.accuracyLevel };
}
