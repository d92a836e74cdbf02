/**
 * Weights read one piece at a time. A model of the size people run (SmolLM2 to Llama 3.2 1B) is
 * 0.27–2.5 GB of bf16, i.e. 0.54–5 GB once widened to fp32: holding every tensor in fp32 before
 * preparing them (models/llama/prepare.ts) was the largest of the copies a load made. A reader
 * hands prepare one layer's tensors at a time, read from wherever the file lives (a disk-backed
 * Blob in a worker, a file in Node), and nothing keeps them once prepared.
 *
 * @example
 * const reader = inMemoryReader(weights);       // tests and llama2.c checkpoints: already in memory
 * const prepared = await prepareWeightsFrom(config, reader);
 */
import { WhittleError } from '../../core/errors.ts';
import type { LlamaLayerWeights, LlamaWeights } from './types.ts';

export interface LlamaWeightReader {
  /**
   * Whether every array a read returns is new and the caller's alone (read from storage), so it
   * may be released once used (core/release.ts). False or absent: the arrays may be the reader's
   * own (inMemoryReader hands out the weights it holds).
   */
  readonly freshReads?: boolean;
  /**
   * Whether every float tensor the reader returns was stored as BF16, so each value is exactly a
   * bfloat16: a writer may then declare them BF16 before reading them (variant-stream.ts).
   */
  readonly floatsExactInBf16?: boolean;
  tokenEmbedding(): Promise<Float32Array>; // [vocab, dim]
  /** The untied head [vocab, dim]; null when the model ties it to the embedding. */
  lmHead(): Promise<Float32Array | null>;
  finalNorm(): Promise<Float32Array>; // [dim]
  layer(i: number): Promise<LlamaLayerWeights>;
  /**
   * Rows `ids` of the embedding [ids.length, dim], read from where the table is stored without
   * reading the table: lets a big tied model look tokens up outside its graphs (runner.ts), so
   * the table lives once, in the head's session. Readers over storage have it.
   */
  embeddingRows?(ids: readonly number[]): Promise<Float32Array>;
  /**
   * Rows first .. first + count - 1 of the embedding [count, dim] in one read, a new array the
   * caller may release: lets a tied head be built a chunk of rows at a time
   * (models/compress/head-from-rows.ts) without the table.
   */
  embeddingRange?(first: number, count: number): Promise<Float32Array>;
}

/** A reader over weights already in memory. */
export function inMemoryReader(weights: LlamaWeights): LlamaWeightReader {
  return {
    tokenEmbedding: async () => weights.tokenEmbedding,
    lmHead: async () => (weights.lmHead === weights.tokenEmbedding ? null : weights.lmHead),
    finalNorm: async () => weights.finalNorm,
    layer: async (i) => {
      const l = weights.layers[i];
      if (!l) throw new RangeError(`layer ${i} of ${weights.layers.length}`);
      return l;
    },
    embeddingRows: async (ids) => gatherRows(weights.tokenEmbedding, weights.finalNorm.length, ids),
    embeddingRange: async (first, count) => {
      const dim = weights.finalNorm.length;
      checkRange(first, count, weights.tokenEmbedding.length / dim);
      return weights.tokenEmbedding.slice(first * dim, (first + count) * dim);
    },
  };
}

/** Every tensor read into memory (for tools that want the whole LlamaWeights). */
export async function readAllWeights(reader: LlamaWeightReader, nLayers: number): Promise<LlamaWeights> {
  const tokenEmbedding = await reader.tokenEmbedding();
  const layers: LlamaLayerWeights[] = [];
  for (let i = 0; i < nLayers; i++) layers.push(await reader.layer(i));
  return { tokenEmbedding, layers, finalNorm: await reader.finalNorm(), lmHead: (await reader.lmHead()) ?? tokenEmbedding };
}

/** Throws INVALID_ARGUMENT unless rows first .. first + count - 1 lie in a table of `vocab` rows. */
export function checkRange(first: number, count: number, vocab: number): void {
  if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 1 || first + count > vocab) {
    throw new WhittleError('INVALID_ARGUMENT', `embedding rows ${first} .. ${first + count - 1} are outside the table's ${vocab} rows`, { first, count, vocab });
  }
}

/**
 * Rows `ids` of a table [vocab, dim] kept in storage -> [ids.length, dim], each row one small
 * read (`readRow`, concurrently): the table itself is never in memory. INVALID_ARGUMENT for a
 * token outside the vocabulary, before anything is read.
 */
export async function readRowByRow(ids: readonly number[], vocab: number, dim: number, readRow: (id: number) => Promise<Float32Array>): Promise<Float32Array> {
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new WhittleError('INVALID_ARGUMENT', `token ${id} is outside the vocabulary (${vocab})`);
  const out = new Float32Array(ids.length * dim);
  await Promise.all(ids.map(async (id, s) => out.set(await readRow(id), s * dim)));
  return out;
}

/** Rows `ids` of `table` [vocab, dim] -> [ids.length, dim]; INVALID_ARGUMENT for a row the table does not have. */
export function gatherRows(table: Float32Array, dim: number, ids: readonly number[]): Float32Array {
  const rows = table.length / dim;
  for (const id of ids) if (!Number.isInteger(id) || id < 0 || id >= rows) throw new WhittleError('INVALID_ARGUMENT', `row ${id} is outside the table's ${rows} rows`, { row: id, rows });
  const out = new Float32Array(ids.length * dim);
  ids.forEach((id, s) => out.set(table.subarray(id * dim, (id + 1) * dim), s * dim));
  return out;
}
