/**
 * Checkpoint weights -> the layout the graphs use. Done once per model load; `setPlan` rebuilds
 * graphs from these arrays without touching the file again. The result shares no memory with
 * the input, so the checkpoint bytes can be dropped after this.
 *
 * - Linear weights are transposed to [in, out] so every projection is one plain MatMul
 *   (x [1, S, in] @ W [in, out]); Gemm would avoid the transpose but only takes 2-D inputs.
 * - Q, K and V are fused into one [dim, (H + 2K) * hs] matrix, gate and up into [dim, 2 * hidden]:
 *   one MatMul instead of three (two), since onnxruntime-web pays per node.
 * - Q rows are pre-multiplied by 1/sqrt(headSize) (RoPE is linear, so this commutes), which
 *   removes the score scaling node.
 * - 'half' (HF) RoPE layouts are permuted to 'interleaved' on Q and K rows, so the graph has one
 *   convention: pair i of a head moves from dims (i, i + hs/2) to (2i, 2i + 1). Q.K dot products
 *   are unchanged because both sides get the same permutation.
 * - Q/K/V biases (Qwen2) get the same treatment as their weight rows (fused, permuted, Q scaled),
 *   so the graph adds one [(H + 2K) * hs] vector after the fused MatMul.
 * - RoPE cos/sin tables carry any `rope_scaling` (rope.ts), so the graph is the same for every variant.
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { arraysIn, releaseNow } from '../../core/release.ts';
import { compressHead, compressLayer } from '../compress/compress-prepared.ts';
import { loadTimeSparsity, sparsifyLayer } from '../compress/sparsity-prepared.ts';
import { resolveForms } from '../compress/kernel-choice.ts';
import type { KernelBackend, WeightForm } from '../compress/kernel-choice.ts';
import { linearBytes, type LinearWeight } from '../compress/linear.ts';
import { headFormStreams, headFromRows, type RowRangeReader } from '../compress/head-from-rows.ts';
import { ropeInverseFrequencies, ropeTables } from './rope.ts';
import { headSizeOf, type LlamaConfig, type LlamaLayerWeights, type LlamaWeights, type WeightsSetting } from './types.ts';
import { gatherRows, type LlamaWeightReader } from './weight-reader.ts';

/** Linear weights are fp32 [in, out] as prepared here, or quantized by `options.weights` (models/compress/linear.ts). */
export interface PreparedLayer {
  attnNorm: Float32Array; // [dim]
  qkv: LinearWeight; // [dim, (nHeads + 2 * nKvHeads) * headSize], columns: q | k | v
  qkvBias?: Float32Array; // [(nHeads + 2 * nKvHeads) * headSize], q | k | v (config.qkvBias only)
  wo: LinearWeight; // [nHeads * headSize, dim]
  ffnNorm: Float32Array; // [dim]
  gateUp: LinearWeight; // [dim, 2 * hidden], columns: gate | up
  down: LinearWeight; // [hidden, dim]
  /**
   * Width pruning (models/compress/width-slice.ts): the KV heads and FFN channels this layer
   * kept, when fewer than the config's; absent = the config's. Whole KV groups are pruned, so the
   * layer has kvHeads * (nHeads / nKvHeads) query heads and every shape above uses these counts.
   */
  kvHeads?: number;
  hidden?: number;
  /** FLAP's bias compensation [dim]: the removed inputs' mean contribution, added after o_proj / down_proj. */
  woBias?: Float32Array;
  downBias?: Float32Array;
}

/** Heads and FFN width of one prepared layer: its own after width pruning, else the config's. */
export function layerWidth(c: LlamaConfig, l: Pick<PreparedLayer, 'kvHeads' | 'hidden'>): { nHeads: number; nKvHeads: number; hidden: number } {
  const nKvHeads = l.kvHeads ?? c.nKvHeads;
  return { nHeads: nKvHeads * (c.nHeads / c.nKvHeads), nKvHeads, hidden: l.hidden ?? c.hiddenDim };
}

export interface PreparedWeights {
  config: LlamaConfig;
  headSize: number;
  embedding: Float32Array; // [vocab, dim] (row gather; not transposed)
  layers: PreparedLayer[];
  finalNorm: Float32Array; // [dim]
  head: LinearWeight; // [dim, vocab]
  ropeCos: Float32Array; // [maxSeqLen, headSize / 2]
  ropeSin: Float32Array; // [maxSeqLen, headSize / 2]
}

/** [rows, cols] row-major -> [cols, rows], writing into `out` at column offset `col0` of width `outCols`. */
function transposeInto(src: Float32Array, rows: number, cols: number, out: Float32Array, outCols: number, col0: number, rowScale = 1, rowOrder?: (r: number) => number): void {
  for (let r = 0; r < rows; r++) {
    const srcRow = rowOrder ? rowOrder(r) : r;
    const base = srcRow * cols;
    for (let c = 0; c < cols; c++) out[c * outCols + col0 + r] = src[base + c]! * rowScale;
  }
}

/**
 * Configs the graphs cannot run correctly: UNSUPPORTED rather than output that silently differs
 * from the model's own. A sliding window shorter than the context would need a banded mask the
 * graphs do not build (Mistral 7B v0.1: 4096 over 32768); load such a model with a context of at
 * most its window instead.
 */
export function checkSupported(config: LlamaConfig): void {
  if (config.slidingWindow !== undefined && config.slidingWindow < config.maxSeqLen) {
    throw new WhittleError(
      'UNSUPPORTED',
      `sliding-window attention (window ${config.slidingWindow}) is not implemented; it only matches full attention for a context of at most the window, and this one is ${config.maxSeqLen}`,
      { slidingWindow: config.slidingWindow, maxSeqLen: config.maxSeqLen },
    );
  }
}

/** A weight's length against the config: BAD_MODEL naming the tensor. */
function expectLength(name: string, arr: Float32Array | undefined, n: number): void {
  if (!arr || arr.length !== n) {
    throw new WhittleError('BAD_MODEL', `weights: ${name} has ${arr?.length ?? 0} values, the config implies ${n}`, { tensor: name, expected: n, actual: arr?.length ?? 0 });
  }
}

/** One layer's arrays against the config. */
function checkLayerShapes(c: LlamaConfig, l: LlamaLayerWeights, i: number): void {
  const hs = headSizeOf(c);
  expectLength(`layers.${i}.attnNorm`, l.attnNorm, c.dim);
  expectLength(`layers.${i}.wq`, l.wq, c.nHeads * hs * c.dim);
  expectLength(`layers.${i}.wk`, l.wk, c.nKvHeads * hs * c.dim);
  expectLength(`layers.${i}.wv`, l.wv, c.nKvHeads * hs * c.dim);
  expectLength(`layers.${i}.wo`, l.wo, c.dim * c.nHeads * hs);
  expectLength(`layers.${i}.ffnNorm`, l.ffnNorm, c.dim);
  expectLength(`layers.${i}.w1`, l.w1, c.hiddenDim * c.dim);
  expectLength(`layers.${i}.w2`, l.w2, c.dim * c.hiddenDim);
  expectLength(`layers.${i}.w3`, l.w3, c.hiddenDim * c.dim);
  if (c.qkvBias) {
    expectLength(`layers.${i}.bq`, l.bq, c.nHeads * hs);
    expectLength(`layers.${i}.bk`, l.bk, c.nKvHeads * hs);
    expectLength(`layers.${i}.bv`, l.bv, c.nKvHeads * hs);
  } else if (l.bq || l.bk || l.bv) {
    // Dropping them would run a different model.
    throw new WhittleError('BAD_MODEL', `weights: layers.${i} has Q/K/V biases but the config says it has none`, { layer: i });
  }
}

/** Checks every array against the config; a mismatch is a BAD_MODEL error naming the tensor. */
export function checkWeightShapes(config: LlamaConfig, weights: LlamaWeights): void {
  const c = config;
  checkHeads(c);
  expectLength('tokenEmbedding', weights.tokenEmbedding, c.vocabSize * c.dim);
  expectLength('finalNorm', weights.finalNorm, c.dim);
  expectLength('lmHead', weights.lmHead, c.vocabSize * c.dim);
  if (weights.layers.length !== c.nLayers) {
    throw new WhittleError('BAD_MODEL', `weights: ${weights.layers.length} layers, the config says ${c.nLayers}`);
  }
  weights.layers.forEach((l, i) => checkLayerShapes(c, l, i));
}

/** Checks the head geometry the graphs need (even head size, whole KV groups). */
function checkHeads(c: LlamaConfig): void {
  const hs = headSizeOf(c);
  if ((c.headDim === undefined && c.dim % c.nHeads !== 0) || !Number.isInteger(hs) || hs % 2 !== 0 || c.nHeads % c.nKvHeads !== 0) {
    throw new WhittleError('BAD_MODEL', `config: dim ${c.dim}, ${c.nHeads} heads of ${hs}, ${c.nKvHeads} KV heads do not make even, grouped heads`);
  }
}

export interface PrepareOptions {
  /** Compress the linear layers (models/compress/) for `backend` (default 'wasm'), each weight's kernel as kernel-choice.ts says; absent = fp32. */
  weights?: WeightsSetting;
  backend?: KernelBackend;
}

/** Layer i in the graphs' layout: transposed, fused, Q pre-scaled, RoPE rows interleaved (see the file's header). */
function layerPreparer(config: LlamaConfig): (l: LlamaLayerWeights, consumed?: (matrix: Float32Array) => void) => PreparedLayer {
  const { dim, nHeads, nKvHeads, hiddenDim } = config;
  const hs = headSizeOf(config);
  const half = hs / 2;
  const qkvCols = (nHeads + 2 * nKvHeads) * hs;
  // Row r of a 'half'-layout head h holds pair i = r % half at (i, i + half); interleaved wants (2i, 2i+1).
  const toInterleaved = config.ropeLayout === 'half' ? (r: number) => {
    const h = Math.floor(r / hs);
    const j = r % hs; // destination dim within the head (interleaved)
    const src = j % 2 === 0 ? j / 2 : half + (j - 1) / 2;
    return h * hs + src;
  } : undefined;
  const qScale = 1 / Math.sqrt(hs);
  // `consumed` is told of each source matrix once it is copied (a streamed load releases it then).
  return (l, consumed = () => {}) => {
    const qkv = new Float32Array(dim * qkvCols);
    transposeInto(l.wq, nHeads * hs, dim, qkv, qkvCols, 0, qScale, toInterleaved);
    consumed(l.wq);
    transposeInto(l.wk, nKvHeads * hs, dim, qkv, qkvCols, nHeads * hs, 1, toInterleaved);
    consumed(l.wk);
    transposeInto(l.wv, nKvHeads * hs, dim, qkv, qkvCols, (nHeads + nKvHeads) * hs);
    consumed(l.wv);
    let qkvBias: Float32Array | undefined;
    if (config.qkvBias) {
      // A bias is a [rows, 1] matrix: transposed, it lands at the same columns as its weight rows.
      qkvBias = new Float32Array(qkvCols);
      transposeInto(l.bq!, nHeads * hs, 1, qkvBias, qkvCols, 0, qScale, toInterleaved);
      transposeInto(l.bk!, nKvHeads * hs, 1, qkvBias, qkvCols, nHeads * hs, 1, toInterleaved);
      transposeInto(l.bv!, nKvHeads * hs, 1, qkvBias, qkvCols, (nHeads + nKvHeads) * hs);
    }
    const wo = new Float32Array(nHeads * hs * dim);
    transposeInto(l.wo, dim, nHeads * hs, wo, dim, 0);
    consumed(l.wo);
    const gateUp = new Float32Array(dim * 2 * hiddenDim);
    transposeInto(l.w1, hiddenDim, dim, gateUp, 2 * hiddenDim, 0);
    consumed(l.w1);
    transposeInto(l.w3, hiddenDim, dim, gateUp, 2 * hiddenDim, hiddenDim);
    consumed(l.w3);
    const down = new Float32Array(hiddenDim * dim);
    transposeInto(l.w2, dim, hiddenDim, down, dim, 0);
    consumed(l.w2);
    return { attnNorm: l.attnNorm.slice(), qkv, ...(qkvBias ? { qkvBias } : {}), wo, ffnNorm: l.ffnNorm.slice(), gateUp, down };
  };
}

/** The parts after the blocks: the head transposed (and compressed), the RoPE tables. */
function finish(config: LlamaConfig, layers: PreparedLayer[], embedding: Float32Array, lmHead: Float32Array, finalNorm: Float32Array, headForm: WeightForm | null, withHead = true): PreparedWeights {
  const { dim, vocabSize, maxSeqLen } = config;
  const hs = headSizeOf(config);
  let head: LinearWeight = new Float32Array(0);
  if (withHead) {
    const fp32Head = new Float32Array(dim * vocabSize);
    transposeInto(lmHead, vocabSize, dim, fp32Head, vocabSize, 0);
    head = headForm ? compressHead(fp32Head, config, headForm) : fp32Head;
  }
  const rope = ropeTables(ropeInverseFrequencies(hs, config.ropeTheta, config.ropeScaling), maxSeqLen);
  return { config, headSize: hs, embedding, layers, finalNorm, head, ropeCos: rope.cos, ropeSin: rope.sin };
}

/** A copy unless `a` already owns its whole buffer: a view kept alive would pin the file it views. */
const owned = (a: Float32Array): Float32Array => (a.byteOffset === 0 && a.byteLength === a.buffer.byteLength ? a : a.slice());

/**
 * `options.weights` compresses the linear layers (models/compress/) for `options.backend`
 * (default 'wasm'), choosing each weight's kernel as kernel-choice.ts says; absent = fp32.
 */
export function prepareWeights(config: LlamaConfig, weights: LlamaWeights, options: PrepareOptions = {}): PreparedWeights {
  checkSupported(config);
  checkWeightShapes(config, weights);
  const hs = headSizeOf(config);
  const prepareLayer = layerPreparer(config);
  const forms = options.weights ? resolveForms(options.weights, options.backend ?? 'wasm', config) : null;
  // Compressed as soon as it is prepared: its fp32 arrays are garbage before the next layer's exist.
  const sparse = options.weights?.sparsity ? loadTimeSparsity(options.weights.sparsity) : null;
  const layers = weights.layers.map((l, i): PreparedLayer => {
    // Masked before quantizing, so the grids are fitted to the weights that remain.
    const prepared = sparse ? sparsifyLayer(prepareLayer(l), i, { config, headSize: hs }, sparse, null) : prepareLayer(l);
    return forms ? compressLayer(prepared, i, config, hs, forms.block) : prepared;
  });
  // Everything is a copy (the few views are sliced too), so the checkpoint's buffer can be
  // garbage-collected once the caller drops it: memory stays at one copy of the weights.
  return finish(config, layers, weights.tokenEmbedding.slice(), weights.lmHead, weights.finalNorm.slice(), forms?.head ?? null);
}

/**
 * prepareWeights reading one layer at a time from `reader`: the checkpoint is never in memory
 * whole (in fp32 or at all), so a load holds the prepared weights plus one layer's raw tensors.
 * `signal` stops it between layers; `onLayer` reports progress (layers done, of nLayers).
 */
export async function prepareWeightsFrom(
  config: LlamaConfig,
  reader: LlamaWeightReader,
  options: PrepareOptions & { signal?: AbortSignal; onLayer?: (done: number, total: number) => void } = {},
): Promise<PreparedWeights> {
  checkSupported(config);
  checkHeads(config);
  const hs = headSizeOf(config);
  const prepareLayer = layerPreparer(config);
  const forms = options.weights ? resolveForms(options.weights, options.backend ?? 'wasm', config) : null;
  const sparse = options.weights?.sparsity ? loadTimeSparsity(options.weights.sparsity) : null;
  const layers: PreparedLayer[] = [];
  for (let i = 0; i < config.nLayers; i++) {
    throwIfAborted(options.signal);
    const raw = await reader.layer(i);
    checkLayerShapes(config, raw, i);
    const unmasked = prepareLayer(raw);
    const layer = sparse ? sparsifyLayer(unmasked, i, { config, headSize: hs }, sparse, null) : unmasked;
    layers.push(forms ? compressLayer(layer, i, config, hs, forms.block) : layer);
    options.onLayer?.(i + 1, config.nLayers);
  }
  throwIfAborted(options.signal);
  const embedding = owned(await reader.tokenEmbedding());
  expectLength('tokenEmbedding', embedding, config.vocabSize * config.dim);
  const lmHead = (await reader.lmHead()) ?? embedding;
  expectLength('lmHead', lmHead, config.vocabSize * config.dim);
  const finalNorm = owned(await reader.finalNorm());
  expectLength('finalNorm', finalNorm, config.dim);
  return finish(config, layers, embedding, lmHead, finalNorm, forms?.head ?? null);
}

/**
 * Prepared weights whose blocks (and head) are produced when a compile asks for them, so a
 * compile that builds one segment at a time holds one segment's arrays in JS, not the model's
 * (runner.ts). The rest (embedding, final norm, RoPE tables) is small beside the blocks or
 * needed by every compile.
 */
export interface LayerwiseWeights extends Omit<PreparedWeights, 'layers' | 'head' | 'embedding'> {
  /** Block `i` prepared (and compressed, if the source is) now; the caller drops it when compiled. */
  layer(i: number): Promise<PreparedLayer>;
  /** The embedding table [vocab, dim], read now; the caller drops it when compiled. */
  embedding(): Promise<Float32Array>;
  /** The head [dim, vocab] prepared now (a tied one from `table`, when the caller has it); the caller drops it when compiled. */
  head(table?: Float32Array): Promise<LinearWeight>;
  /** Whether `head()` is fp32 (a tied fp32 head may read the embedding table instead). */
  readonly headIsFp32: boolean;
  /**
   * Whether `head()` of a tied model wants the table passed in (else it reads it itself): false
   * when the head is built from the stored rows a chunk at a time, or was built already.
   */
  readonly headReadsTable: boolean;
  /** Embedding rows read from storage (LlamaWeightReader.embeddingRows), when the source can. */
  embeddingRows?: (ids: readonly number[]) => Promise<Float32Array>;
  /**
   * Which arrays the source hands out are made for the asker alone, so a compile may release
   * them (core/release.ts) once onnxruntime holds them; held weights' are never.
   */
  readonly fresh: { layers: boolean; head: boolean; table: boolean };
}

/** Releases the arrays of `before` that `after` does not use (core/release.ts). */
function releaseReplaced(before: readonly ArrayBufferView[], after: PreparedLayer): void {
  const kept = new Set(arraysIn(after).map((a) => a.buffer));
  for (const a of before) if (!kept.has(a.buffer)) releaseNow(a);
}

/**
 * Held prepared weights seen as layerwise ones (nothing prepared again). Rows are looked up in
 * the held table: JS holds it anyway, so a big one (a cached variant of SmolLM2-135M and up)
 * need not be in a session too.
 */
export function heldLayerwise(w: PreparedWeights): LayerwiseWeights {
  const { layers, head, embedding, ...rest } = w;
  return {
    ...rest,
    layer: async (i) => layers[i]!,
    embedding: async () => embedding,
    head: async () => head,
    headIsFp32: head instanceof Float32Array,
    headReadsTable: false,
    fresh: { layers: false, head: false, table: false },
    embeddingRows: async (ids) => gatherRows(embedding, w.config.dim, ids),
  };
}

/**
 * `reader.embeddingRows` as a function made outside prepareLayerwiseFrom: a closure made there
 * would share that call's scope, and with it whatever else that scope holds, for as long as a
 * runner keeps it.
 */
function rowReader(reader: LlamaWeightReader): ((ids: readonly number[]) => Promise<Float32Array>) | undefined {
  return reader.embeddingRows ? (ids) => reader.embeddingRows!(ids) : undefined;
}

/** `reader.embeddingRange` as a function made outside prepareLayerwiseFrom (see rowReader). */
function rangeReader(reader: LlamaWeightReader): RowRangeReader {
  return (first, count) => reader.embeddingRange!(first, count);
}

/**
 * LayerwiseWeights over `reader`: the final norm is read now; each block is read, checked,
 * prepared (masked and compressed with `options.weights`) when asked for, and so are the
 * embedding and the head (transposed, compressed), so a whole-model copy never exists in JS and
 * the table (1.05 GB fp32 at Llama-3.2-1B) only while a segment that needs it compiles.
 */
export async function prepareLayerwiseFrom(config: LlamaConfig, reader: LlamaWeightReader, options: PrepareOptions & { signal?: AbortSignal } = {}): Promise<LayerwiseWeights> {
  checkSupported(config);
  checkHeads(config);
  const hs = headSizeOf(config);
  const prepareLayer = layerPreparer(config);
  const forms = options.weights ? resolveForms(options.weights, options.backend ?? 'wasm', config) : null;
  const sparse = options.weights?.sparsity ? loadTimeSparsity(options.weights.sparsity) : null;
  throwIfAborted(options.signal);
  const finalNorm = owned(await reader.finalNorm());
  expectLength('finalNorm', finalNorm, config.dim);
  const readTable = async (): Promise<Float32Array> => {
    throwIfAborted(options.signal);
    const table = owned(await reader.tokenEmbedding());
    expectLength('tokenEmbedding', table, config.vocabSize * config.dim);
    return table;
  };
  const { ropeCos, ropeSin } = finish(config, [], new Float32Array(0), new Float32Array(0), finalNorm, null, false);
  // A tied head in a per-column form is built from the stored rows, a chunk at a time: the
  // table is then read only where a graph gathers from it.
  const streamsHead = config.tiedEmbeddings && reader.embeddingRange !== undefined && headFormStreams(forms?.head);
  return {
    config,
    headSize: hs,
    finalNorm,
    ropeCos,
    ropeSin,
    headIsFp32: !forms?.head || forms.head.form === 'f32',
    headReadsTable: !streamsHead,
    // Layers and heads are prepared anew on every call; the table is the reader's own array unless it reads from storage.
    fresh: { layers: true, head: true, table: reader.freshReads === true },
    layer: async (i) => {
      throwIfAborted(options.signal);
      const raw = await reader.layer(i);
      checkLayerShapes(config, raw, i);
      // Each read matrix (when fresh) and each fp32 step is released as soon as it is copied
      // or quantized: at Llama-3.2-1B a layer's are ~0.5 GB, which V8 would collect only later.
      const unmasked = prepareLayer(raw, reader.freshReads ? releaseNow : undefined);
      // Masked before quantizing, as prepareWeightsFrom does.
      const layer = sparse ? sparsifyLayer(unmasked, i, { config, headSize: hs }, sparse, null) : unmasked;
      const result = forms ? compressLayer(layer, i, config, hs, forms.block, releaseNow) : layer;
      // Whatever else the steps made and the result does not use (masking's inputs, the read biases and norms).
      const steps = [...arraysIn(unmasked), ...(layer === unmasked ? [] : arraysIn(layer))];
      releaseReplaced(reader.freshReads ? [...steps, ...Object.values(raw).filter((v): v is Float32Array => v instanceof Float32Array)] : steps, result);
      return result;
    },
    embedding: readTable,
    head: async (table) => {
      if (streamsHead && !table) {
        const streamed = await headFromRows(rangeReader(reader), config.vocabSize, config.dim, forms?.head, options.signal);
        if (streamed) return streamed;
      }
      const untied = await reader.lmHead();
      if (untied) expectLength('lmHead', untied, config.vocabSize * config.dim);
      return finish(config, [], new Float32Array(0), untied ?? table ?? (await readTable()), finalNorm, forms?.head ?? null).head;
    },
    ...(reader.embeddingRows ? { embeddingRows: rowReader(reader) } : {}),
  };
}

/** Bytes the prepared weights occupy (what a second copy of them would cost). */
export function preparedBytes(p: PreparedWeights): number {
  let n = p.embedding.byteLength + p.finalNorm.byteLength + linearBytes(p.head) + p.ropeCos.byteLength + p.ropeSin.byteLength;
  for (const l of p.layers) {
    n += l.attnNorm.byteLength + l.ffnNorm.byteLength + (l.qkvBias?.byteLength ?? 0) + (l.woBias?.byteLength ?? 0) + (l.downBias?.byteLength ?? 0) + linearBytes(l.qkv) + linearBytes(l.wo) + linearBytes(l.gateUp) + linearBytes(l.down);
  }
  return n;
}
