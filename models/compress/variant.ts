/**
 * A compressed variant: `PreparedWeights` in their stored form (variant-forms.ts) as one
 * safetensors file, `model.whittle.safetensors`, so a second load skips reading the source
 * weights, transposing and quantizing, and a server can host the small file instead of bf16.
 *
 * Tensors (names per prepared layer; K x N is MatMul's B, as prepare.ts lays it out):
 *   embedding                    F32|BF16 [vocab, dim]
 *   final_norm                   F32|BF16 [dim]
 *   layers.<i>.attn_norm, .ffn_norm   [dim];   layers.<i>.qkv_bias [qkvCols] (config.qkvBias only)
 *   layers.<i>.{qkv,wo,gate_up,down}  and  head   one linear each, by its stored form:
 *     f32:   <name>                                  F32|BF16 [K, N]
 *     int8:  <name>.q I8 [K, N], <name>.scales F32 [N]                 (per-channel.ts)
 *     nbits: <name>.q U8 [N, nBlocks, blob], <name>.scales F32 [N, nBlocks],
 *            <name>.zero_points U8 [N, zpBytes]                        (blockwise.ts)
 *   sparse (setting.sparsity; block linears only, sparse-linear.ts): the element tensor above
 *     (<name> for f32, <name>.q otherwise) is replaced by
 *       <x>.sparse_index   U8 [index bytes]      2:4 pairs, or a bitmask (sparse-encoding.ts)
 *       <x>.sparse_values  F32|BF16 | I8 | U8 [count or packed bytes]   the kept elements
 *     beside the dense .scales / .zero_points; the file is then version 2.
 *   width (a width-pruned plan's narrowed blocks, version 3): the blocks in width.layers that
 *     keep fewer KV heads or FFN channels than the config have the narrowed shapes (width-slice.ts:
 *     qkv [dim, (H' + 2K') hs], wo [H' hs, dim], gate_up [dim, 2F'], down [F', dim], qkv_bias
 *     [(H' + 2K') hs]), and with width.bias FLAP's compensation layers.<i>.wo_bias and
 *     .down_bias F32|BF16 [dim]; every other block has the config's shapes.
 *   `head` is absent when it is fp32 and the embeddings are tied: it is then exactly the
 *   embedding transposed, rebuilt on load (half the bytes of an fp32-head variant).
 * RoPE tables are not stored: they follow from the config (rope.ts).
 * Floats are written BF16 where that is lossless (every value's low 16 bits zero, as for weights
 * that came from a bf16 checkpoint) and F32 otherwise: never a rounding. writeVariant decides by
 * the values; the streamed writer (variant-stream.ts) decides before reading, by the source's
 * dtypes, and orders tensors by dtype within each segment (table, each block, head) rather than
 * across the file.
 *
 * `__metadata__` (safetensors allows string values only; the JSON ones are JSON strings):
 *   format "whittle-variant", whittle_version "1", setting (WeightsSetting), stored (the stored
 *   form of the block linears and of the head), kernels (what each backend compiles from them,
 *   for readers' information), config (the LlamaConfig the weights were prepared for), source
 *   ({ id, revision, format, config_sha256? }), method (the setting's: rtn / hqq / awq), head
 *   "tied" | "stored", sparsity (sparse variants only: { pattern, ratio, method }), width (width
 *   variants only: the plan's WidthPlan { kvHeads, ffn, bias } and `layers`, the blocks narrowed).
 *
 * Reading treats the file as hostile (it may come from any URL): the header is bounds-checked by
 * the safetensors reader before anything is allocated from it, then the metadata is checked
 * field by field and every tensor's dtype and shape against what the config implies, all before
 * a tensor is decoded: any mismatch is BAD_MODEL naming the tensor (a newer format version is
 * UNSUPPORTED). A sparse index must also agree with its values' count (each bitmask's popcount,
 * counted in place) before anything is decoded. Decoding a sparse weight allocates at most ~50
 * bytes per byte of its index (one uint32 per element while decoding, 8 or 12 elements per index
 * byte, then the dense form), and the index is in the file: a header cannot make the reader
 * allocate what the file's bytes do not back.
 *
 * @example
 * const parts = writeVariant(storedPrepared, { linear: 'q4', group: 32 }, { id: 'stories-layerskip', revision: 'r1', format: 'hf' });
 * const { prepared, info } = readVariant(await new Blob(parts).arrayBuffer());
 * const runnable = toKernelForms(prepared, info.setting, 'wasm');
 */
import { WhittleError } from '../../core/errors.ts';
import { releaseAllIn } from '../../core/release.ts';
import { decodeFloatTensor, parseSafetensorsHeader, safetensorsHeaderLength, type SafetensorsEntry } from '../import/hf/safetensors.ts';
import { ropeInverseFrequencies, ropeTables } from '../llama/rope.ts';
import { layerWidth, type PreparedLayer, type PreparedWeights } from '../llama/prepare.ts';
import { headSizeOf, type LlamaConfig, type WeightsSetting, type WidthPlan } from '../llama/types.ts';
import { blobBytes, blockCount, zeroPointBytes, type BlockSize, type NBits } from './blockwise.ts';
import { resolveForms, validateWeights, type WeightForm } from './kernel-choice.ts';
import type { LinearWeight } from './linear.ts';

import { decodeSparseLinear, encodeSparseLinear, sparseValueBytes, type SparseValues } from './sparse-linear.ts';
import { popcount, sparseIndexBytes, twoFourValues } from './sparse-encoding.ts';
import { normalizeSparsity, type SparsitySetting } from './sparsity-select.ts';
import { SPARSE_VARIANT_VERSION, VARIANT_FILE, VARIANT_VERSION, WIDTH_VARIANT_VERSION } from './variant-name.ts';
import { validateWidth } from './width-slice.ts';

export { VARIANT_FILE, VARIANT_VERSION };
const FORMAT = 'whittle-variant';

/** Where a variant's weights came from: recorded, and compared by whoever loads it against the source it expects. */
export interface VariantSource {
  id: string;
  revision: string;
  /** 'hf': tokenizer per tokenizer.json; 'llama2c': llama2.c conventions (BOS always prepended). */
  format: 'hf' | 'llama2c';
  /** sha256 of the source's config.json, when it had one. */
  configSha256?: string;
}

/** How one linear weight is stored. */
export type StoredForm = { form: 'f32' } | { form: 'int8' } | { form: 'nbits'; bits: NBits; blockSize: BlockSize };

export interface VariantInfo {
  version: number;
  setting: WeightsSetting;
  stored: { block: StoredForm; head: StoredForm };
  config: LlamaConfig;
  source: VariantSource;
  /** Sparse block linears (version 2): how they were masked and are stored. */
  sparsity?: Required<SparsitySetting>;
  /** Narrowed blocks (version 3): the width plan they were sliced to and the blocks sliced. */
  width?: VariantWidth;
}

/** A width variant's blocks: `plan` (kept KV heads and FFN channels of every block) applied to the blocks in `layers`. */
export interface VariantWidth {
  plan: WidthPlan;
  layers: number[];
}

/** The shapes of block `i`: narrowed when `width` slices it to fewer heads or channels, else the config's. */
function blockShape(c: LlamaConfig, width: VariantWidth | undefined, i: number): { nHeads: number; nKvHeads: number; hidden: number; narrowed: boolean } {
  const kv = width?.plan.kvHeads[i]?.length ?? c.nKvHeads;
  const hidden = width?.plan.ffn[i]?.length ?? c.hiddenDim;
  const narrowed = width !== undefined && width.layers.includes(i) && (kv < c.nKvHeads || hidden < c.hiddenDim);
  return narrowed ? { ...layerWidth(c, { kvHeads: kv, hidden }), narrowed } : { nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim, narrowed };
}

// ---------------------------------------------------------------------------------------------
// Writing

/** A tensor's header entry: all a reader learns before its bytes (a streamed writer knows it before producing them). */
export interface TensorSpec {
  name: string;
  dtype: 'F32' | 'BF16' | 'I8' | 'U8';
  shape: number[];
  byteLength: number;
}

export interface OutTensor {
  name: string;
  dtype: TensorSpec['dtype'];
  shape: number[];
  bytes: Uint8Array;
}

/** fp32 values as BF16 when every one is exactly a bfloat16 (its low 16 bits zero), else F32. */
function floatTensor(name: string, shape: number[], v: Float32Array): OutTensor {
  const words = new Uint32Array(v.buffer, v.byteOffset, v.length);
  let lossless = true;
  for (let i = 0; i < words.length; i++) {
    if ((words[i]! & 0xffff) !== 0) {
      lossless = false;
      break;
    }
  }
  if (!lossless) return { name, dtype: 'F32', shape, bytes: new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength)) };
  const half = new Uint16Array(v.length);
  for (let i = 0; i < words.length; i++) half[i] = words[i]! >>> 16;
  return { name, dtype: 'BF16', shape, bytes: new Uint8Array(half.buffer) };
}

const copy = (a: Uint8Array | Int8Array | Float32Array): Uint8Array => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

export function storedFormOf(w: LinearWeight): StoredForm {
  if (w instanceof Float32Array) return { form: 'f32' };
  if (w.kind === 'int8') return { form: 'int8' };
  return { form: 'nbits', bits: w.weight.bits, blockSize: w.weight.blockSize };
}

export const sameForm = (a: StoredForm, b: StoredForm) => JSON.stringify(a) === JSON.stringify(b);

export function linearTensors(name: string, w: LinearWeight, K: number, N: number, sparsity?: Required<SparsitySetting>): OutTensor[] {
  if (sparsity) {
    // The element tensor becomes index + kept values; scales and zero points stay dense.
    const { index, values } = encodeSparseLinear(w, K, N, sparsity.pattern);
    const x = w instanceof Float32Array ? name : `${name}.q`;
    const kept: OutTensor =
      values instanceof Float32Array
        ? floatTensor(`${x}.sparse_values`, [values.length], values)
        : { name: `${x}.sparse_values`, dtype: values instanceof Int8Array ? 'I8' : 'U8', shape: [values.length], bytes: copy(values) };
    const rest = w instanceof Float32Array ? [] : linearTensors(name, w, K, N).filter((t) => t.name !== `${name}.q`);
    return [{ name: `${x}.sparse_index`, dtype: 'U8', shape: [index.length], bytes: index }, kept, ...rest];
  }
  if (w instanceof Float32Array) return [floatTensor(name, [K, N], w)];
  if (w.kind === 'int8') {
    return [
      { name: `${name}.q`, dtype: 'I8', shape: [K, N], bytes: copy(w.weight.b) },
      { name: `${name}.scales`, dtype: 'F32', shape: [N], bytes: copy(w.weight.scales) },
    ];
  }
  const q = w.weight;
  const nBlocks = blockCount(K, q.blockSize);
  return [
    { name: `${name}.q`, dtype: 'U8', shape: [N, nBlocks, blobBytes(q.blockSize, q.bits)], bytes: copy(q.b) },
    { name: `${name}.scales`, dtype: 'F32', shape: [N, nBlocks], bytes: copy(q.scales) },
    { name: `${name}.zero_points`, dtype: 'U8', shape: [N, zeroPointBytes(nBlocks, q.bits)], bytes: copy(q.zeroPoints) },
  ];
}

/**
 * The tensors of one dense linear [K, N] stored as `form`, as a file holds them (linearTensors
 * writes them, expectedTensors checks them, the streamed writer declares them): `float` is an
 * fp32 weight, stored F32 or BF16.
 */
export function denseLinearTensors(name: string, form: StoredForm, K: number, N: number): { name: string; dtype: 'float' | 'F32' | 'I8' | 'U8'; shape: number[] }[] {
  if (form.form === 'f32') return [{ name, dtype: 'float', shape: [K, N] }];
  if (form.form === 'int8') {
    return [
      { name: `${name}.q`, dtype: 'I8', shape: [K, N] },
      { name: `${name}.scales`, dtype: 'F32', shape: [N] },
    ];
  }
  const nBlocks = blockCount(K, form.blockSize);
  return [
    { name: `${name}.q`, dtype: 'U8', shape: [N, nBlocks, blobBytes(form.blockSize, form.bits)] },
    { name: `${name}.scales`, dtype: 'F32', shape: [N, nBlocks] },
    { name: `${name}.zero_points`, dtype: 'U8', shape: [N, zeroPointBytes(nBlocks, form.bits)] },
  ];
}

/** The head [dim, vocab] equals the embedding [vocab, dim] transposed: then it need not be stored. */
function headIsEmbeddingT(p: PreparedWeights): boolean {
  if (!(p.head instanceof Float32Array) || !p.config.tiedEmbeddings) return false;
  const { dim, vocabSize } = p.config;
  const h = p.head;
  for (let v = 0; v < vocabSize; v++) for (let d = 0; d < dim; d++) if (h[d * vocabSize + v] !== p.embedding[v * dim + d]) return false;
  return true;
}

/**
 * The variant file of stored-form prepared weights (variant-forms.ts' `storagePlan`), as
 * parts whose concatenation is the file: the header, then one copy per tensor (copies, so a
 * worker can transfer them without detaching the weights it still runs). Throws
 * INVALID_ARGUMENT for weights holding a 'dequantized' form (fp32 standing for a grid).
 * `consume`: the caller hands `p` over, and each of its arrays is released (core/release.ts) as
 * soon as its copy is made, so the stored form and the file never both exist whole (at
 * Llama-3.2-1B q8, 2.5 GB of one beside 1.7 GB of the other). `p` is empty afterwards.
 */
export function writeVariant(p: PreparedWeights, setting: WeightsSetting, source: VariantSource, width?: VariantWidth, options: { consume?: boolean } = {}): ArrayBuffer[] {
  validateWeights(setting);
  const c = p.config;
  const hs = p.headSize;
  if (width) validateWidth(width.plan, c.nLayers, c.nKvHeads, c.hiddenDim);
  const block = p.layers[0] ? storedFormOf(p.layers[0].qkv) : ({ form: 'f32' } as StoredForm);
  const head = storedFormOf(p.head);
  checkStoredForms(setting, block, head);
  const sparsity = setting.sparsity ? normalizeSparsity(setting.sparsity) : undefined;
  // Whether the head is the table transposed, decided before either is released.
  const tied = headIsEmbeddingT(p);
  const consumed = (...arrays: unknown[]) => {
    if (options.consume) for (const a of arrays) releaseAllIn(a);
  };
  const tensors: OutTensor[] = [floatTensor('embedding', [c.vocabSize, c.dim], p.embedding), floatTensor('final_norm', [c.dim], p.finalNorm)];
  consumed(p.embedding, p.finalNorm);
  p.layers.forEach((l, i) => {
    const n = `layers.${i}`;
    for (const [key, w] of [['qkv', l.qkv], ['wo', l.wo], ['gate_up', l.gateUp], ['down', l.down]] as const) {
      if (!sameForm(storedFormOf(w), block)) throw new WhittleError('INVALID_ARGUMENT', `writeVariant: ${n}.${key} is not stored as ${JSON.stringify(block)}`);
    }
    // The layer's own shape must be the one the metadata will make a reader expect.
    const shape = blockShape(c, width, i);
    const own = layerWidth(c, l);
    const compensated = l.woBias !== undefined && l.downBias !== undefined;
    if (own.nKvHeads !== shape.nKvHeads || own.hidden !== shape.hidden || compensated !== (shape.narrowed && width?.plan.bias === true) || (l.woBias === undefined) !== (l.downBias === undefined)) {
      throw new WhittleError('INVALID_ARGUMENT', `writeVariant: ${n} has ${own.nKvHeads} KV heads, ${own.hidden} FFN channels${compensated ? ', compensation biases' : ''}; the width given says ${shape.nKvHeads}, ${shape.hidden}${shape.narrowed && width?.plan.bias ? ', with biases' : ''}`);
    }
    const qkvCols = (shape.nHeads + 2 * shape.nKvHeads) * hs;
    tensors.push(floatTensor(`${n}.attn_norm`, [c.dim], l.attnNorm), floatTensor(`${n}.ffn_norm`, [c.dim], l.ffnNorm));
    if (l.qkvBias) tensors.push(floatTensor(`${n}.qkv_bias`, [qkvCols], l.qkvBias));
    if (l.woBias && l.downBias) tensors.push(floatTensor(`${n}.wo_bias`, [c.dim], l.woBias), floatTensor(`${n}.down_bias`, [c.dim], l.downBias));
    tensors.push(...linearTensors(`${n}.qkv`, l.qkv, c.dim, qkvCols, sparsity), ...linearTensors(`${n}.wo`, l.wo, shape.nHeads * hs, c.dim, sparsity));
    tensors.push(...linearTensors(`${n}.gate_up`, l.gateUp, c.dim, 2 * shape.hidden, sparsity), ...linearTensors(`${n}.down`, l.down, shape.hidden, c.dim, sparsity));
    consumed(l);
  });
  if (!tied) tensors.push(...linearTensors('head', p.head, c.dim, c.vocabSize));
  consumed(p.head);

  const metadata = variantMetadata({ setting, block, head, config: c, source, tied, ...(sparsity ? { sparsity } : {}), ...(width ? { width } : {}) });
  // F32 first, then BF16, then bytes: every tensor stays aligned to its element size with no gap
  // between tensors (official safetensors readers refuse gaps), so a reader can view F32 in place.
  byDtypeRank(tensors);
  const header = encodeVariantHeader(metadata, tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.bytes.byteLength })));
  return [header.buffer as ArrayBuffer, ...tensors.map((t) => t.bytes.buffer as ArrayBuffer)];
}

/**
 * Throws INVALID_ARGUMENT unless `block` and `head` are stored forms `setting` can leave: a
 * 'dequantized' weight is a Float32Array, which would be stored as fp32 and read back as a
 * setting that never made fp32 blocks. Refused rather than written wrong.
 */
export function checkStoredForms(setting: WeightsSetting, block: StoredForm, head: StoredForm): void {
  const want = expectedForms(setting);
  if (!want.block.some((f) => sameForm(f, block)) || !want.head.some((f) => sameForm(f, head))) {
    throw new WhittleError('INVALID_ARGUMENT', `writeVariant: weights held as ${JSON.stringify({ block, head })} are not a stored form of ${JSON.stringify(setting)} (prepare them as storagePlan() says)`);
  }
}

/** Sorts tensors F32, then BF16, then bytes (stable): each stays aligned to its element size when the ones before it are whole multiples of 4 bytes. */
export function byDtypeRank<T extends { dtype: TensorSpec['dtype'] }>(tensors: T[]): T[] {
  const rank = { F32: 0, BF16: 1, I8: 2, U8: 2 } as const;
  return tensors.sort((a, b) => rank[a.dtype] - rank[b.dtype]);
}

/** The `__metadata__` of a variant (see the file's header). */
export function variantMetadata(v: { setting: WeightsSetting; block: StoredForm; head: StoredForm; config: LlamaConfig; source: VariantSource; tied: boolean; sparsity?: Required<SparsitySetting>; width?: VariantWidth }): Record<string, string> {
  const { setting, config: c, source, sparsity, width } = v;
  return {
    format: FORMAT,
    whittle_version: String(width ? WIDTH_VARIANT_VERSION : sparsity ? SPARSE_VARIANT_VERSION : VARIANT_VERSION),
    method: setting.method ?? 'rtn',
    setting: JSON.stringify(setting),
    stored: JSON.stringify({ block: v.block, head: v.head }),
    kernels: JSON.stringify({ wasm: resolveForms(setting, 'wasm', c), webgpu: resolveForms(setting, 'webgpu', c) }),
    config: JSON.stringify(c),
    source: JSON.stringify({ id: source.id, revision: source.revision, format: source.format, ...(source.configSha256 ? { config_sha256: source.configSha256 } : {}) }),
    head: v.tied ? 'tied' : 'stored',
    ...(sparsity ? { sparsity: JSON.stringify(sparsity) } : {}),
    ...(width ? { width: JSON.stringify({ kvHeads: width.plan.kvHeads, ffn: width.plan.ffn, bias: width.plan.bias === true, layers: width.layers }) } : {}),
  };
}

/**
 * The file's first bytes: the header's length (u64 LE) and its JSON, which lists `tensors` back
 * to back in the order given (safetensors allows no gaps), padded with spaces (valid JSON) so
 * the data starts 8-byte aligned.
 */
export function encodeVariantHeader(metadata: Record<string, string>, tensors: readonly TensorSpec[]): Uint8Array {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    offset += t.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.byteLength / 8) * 8;
  if (padded !== json.byteLength) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(padded - json.byteLength));
  const head8 = new Uint8Array(8 + json.byteLength);
  new DataView(head8.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  head8.set(json, 8);
  return head8;
}

// ---------------------------------------------------------------------------------------------
// Reading

/** The stored forms a setting may leave: its forms on either backend, packed (the 'dequantized' kernel form is stored as its grid). */
function expectedForms(s: WeightsSetting): { block: StoredForm[]; head: StoredForm[] } {
  const asStored = (f: WeightForm): StoredForm => (f.form === 'f32' || f.form === 'int8' ? { form: f.form } : { form: 'nbits', bits: f.bits, blockSize: f.blockSize });
  const forms = (['wasm', 'webgpu'] as const).map((b) => resolveForms(s, b));
  const group = s.group ?? 32;
  const blockBits: NBits | null = s.linear === 'q8' ? 8 : s.linear === 'q4' ? 4 : null;
  const block: StoredForm[] = blockBits === null ? [{ form: 'f32' }] : [{ form: 'nbits', bits: blockBits, blockSize: group }, ...(blockBits === 8 ? [{ form: 'int8' } as StoredForm] : [])];
  // The head: fp32 or 8 bits in either packing, whichever backend made it (kernel-choice.ts).
  const head: StoredForm[] = [{ form: 'f32' }, { form: 'int8' }, { form: 'nbits', bits: 8, blockSize: group }];
  for (const f of forms) if (!head.some((h) => sameForm(h, asStored(f.head)))) head.push(asStored(f.head));
  return { block, head };
}

const bad = (message: string, details: Record<string, string | number> = {}) => new WhittleError('BAD_MODEL', `${VARIANT_FILE}: ${message}`, { file: VARIANT_FILE, ...details });

function parseJsonField(meta: Record<string, unknown>, key: string): unknown {
  const raw = meta[key];
  if (typeof raw !== 'string') throw bad(`__metadata__.${key} is missing or not a string`);
  try {
    return JSON.parse(raw);
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${VARIANT_FILE}: __metadata__.${key} is not JSON`, { file: VARIANT_FILE }, { cause: err });
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Limits no LLaMA-family model this SDK runs comes near; beyond them a config is hostile, not a model. */
const LIMITS = { dim: 1 << 16, hiddenDim: 1 << 18, nLayers: 1024, nHeads: 1024, nKvHeads: 1024, vocabSize: 1 << 22, maxSeqLen: 1 << 20, headDim: 1 << 12 } as const;

/** The metadata's config, field by field: every number the loader sizes an allocation by is a bounded positive integer. */
function checkConfig(raw: unknown): LlamaConfig {
  if (!isObject(raw)) throw bad('__metadata__.config is not an object');
  for (const [key, max] of Object.entries(LIMITS)) {
    const v = raw[key];
    if (key === 'headDim' && v === undefined) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || v > max) throw bad(`config.${key} must be an integer in 1..${max}, not ${JSON.stringify(v)}`);
  }
  for (const key of ['ropeTheta', 'normEps'] as const) if (typeof raw[key] !== 'number' || !Number.isFinite(raw[key]) || (raw[key] as number) <= 0) throw bad(`config.${key} must be a positive number`);
  for (const key of ['bosTokenId', 'eosTokenId'] as const) if (typeof raw[key] !== 'number' || !Number.isSafeInteger(raw[key])) throw bad(`config.${key} must be an integer`);
  if (typeof raw.tiedEmbeddings !== 'boolean') throw bad('config.tiedEmbeddings must be a boolean');
  if (raw.qkvBias !== undefined && typeof raw.qkvBias !== 'boolean') throw bad('config.qkvBias must be a boolean');
  if (raw.ropeLayout !== 'interleaved' && raw.ropeLayout !== 'half') throw bad("config.ropeLayout must be 'interleaved' or 'half'");
  if (raw.slidingWindow !== undefined && (typeof raw.slidingWindow !== 'number' || !Number.isSafeInteger(raw.slidingWindow) || raw.slidingWindow < 1)) throw bad('config.slidingWindow must be a positive integer');
  const sc = raw.ropeScaling;
  if (sc !== undefined) {
    const num = (k: string) => isObject(sc) && typeof sc[k] === 'number' && Number.isFinite(sc[k]) && (sc[k] as number) > 0;
    const ok = isObject(sc) && ((sc.type === 'linear' && num('factor')) || (sc.type === 'llama3' && ['factor', 'lowFreqFactor', 'highFreqFactor', 'originalMaxPositionEmbeddings'].every(num)));
    if (!ok) throw bad('config.ropeScaling is not a linear or llama3 scaling');
  }
  const c = raw as unknown as LlamaConfig;
  const hs = headSizeOf(c);
  if (!Number.isInteger(hs) || hs % 2 !== 0 || c.nHeads % c.nKvHeads !== 0) throw bad(`config: ${c.nHeads} heads of ${hs}, ${c.nKvHeads} KV heads do not make even, grouped heads`);
  return c;
}

function checkStoredForm(raw: unknown, what: string): StoredForm {
  if (!isObject(raw)) throw bad(`__metadata__.stored.${what} is not an object`);
  if (raw.form === 'f32' || raw.form === 'int8') return { form: raw.form };
  if (raw.form === 'nbits' && (raw.bits === 4 || raw.bits === 8) && (raw.blockSize === 32 || raw.blockSize === 64 || raw.blockSize === 128)) {
    return { form: 'nbits', bits: raw.bits, blockSize: raw.blockSize };
  }
  throw bad(`__metadata__.stored.${what} is not a stored form: ${JSON.stringify(raw)}`);
}

function checkSetting(raw: unknown): WeightsSetting {
  if (!isObject(raw)) throw bad('__metadata__.setting is not an object');
  try {
    validateWeights(raw as unknown as WeightsSetting);
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${VARIANT_FILE}: __metadata__.setting: ${(err as Error).message}`, { file: VARIANT_FILE }, { cause: err });
  }
  const { linear, group, kernel, head, accuracyLevel, method, sparsity } = raw as unknown as WeightsSetting;
  return {
    linear,
    ...(group !== undefined ? { group } : {}),
    ...(kernel !== undefined ? { kernel } : {}),
    ...(head !== undefined ? { head } : {}),
    ...(accuracyLevel !== undefined ? { accuracyLevel } : {}),
    ...(method !== undefined ? { method } : {}),
    ...(sparsity !== undefined ? { sparsity: normalizeSparsity(sparsity) } : {}),
  };
}

function checkSource(raw: unknown): VariantSource {
  if (!isObject(raw) || typeof raw.id !== 'string' || typeof raw.revision !== 'string' || (raw.format !== 'hf' && raw.format !== 'llama2c')) throw bad('__metadata__.source must be { id, revision, format }');
  if (raw.config_sha256 !== undefined && (typeof raw.config_sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(raw.config_sha256))) throw bad('__metadata__.source.config_sha256 is not a sha256');
  return { id: raw.id, revision: raw.revision, format: raw.format, ...(raw.config_sha256 ? { configSha256: raw.config_sha256 as string } : {}) };
}

function checkSparsity(raw: unknown): Required<SparsitySetting> {
  if (!isObject(raw)) throw bad('__metadata__.sparsity is not an object');
  try {
    const s = normalizeSparsity(raw as unknown as SparsitySetting);
    if (JSON.stringify(s) !== JSON.stringify({ pattern: raw.pattern, ratio: raw.ratio, method: raw.method })) throw new Error('fields missing or extra');
    return s;
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${VARIANT_FILE}: __metadata__.sparsity: ${(err as Error).message}`, { file: VARIANT_FILE }, { cause: err });
  }
}

/** The metadata's width: a valid WidthPlan for the config and distinct blocks it was applied to. */
function checkWidth(raw: unknown, c: LlamaConfig): VariantWidth {
  if (!isObject(raw) || typeof raw.bias !== 'boolean' || !Array.isArray(raw.layers)) throw bad('__metadata__.width must be { kvHeads, ffn, bias, layers }');
  const plan: WidthPlan = { kvHeads: raw.kvHeads as number[][], ffn: raw.ffn as number[][], bias: raw.bias };
  try {
    validateWidth(plan, c.nLayers, c.nKvHeads, c.hiddenDim);
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${VARIANT_FILE}: __metadata__.width: ${(err as Error).message}`, { file: VARIANT_FILE }, { cause: err });
  }
  const layers = raw.layers as unknown[];
  if (layers.length > c.nLayers || layers.some((l, i) => !Number.isInteger(l) || (l as number) < 0 || (l as number) >= c.nLayers || layers.indexOf(l) !== i)) throw bad(`__metadata__.width.layers must be distinct blocks below ${c.nLayers}`);
  return { plan, layers: layers as number[] };
}

/** A variant's header, checked: what it is and where each tensor lies (absolute byte offsets), no tensor decoded. */
export interface OpenedVariant {
  info: VariantInfo;
  tensors: Map<string, SafetensorsEntry>;
  /** The head is the fp32 embedding transposed, not stored. */
  tiedHead: boolean;
}

/** The metadata only (header bytes): what a variant is, without decoding any tensor. */
export function readVariantInfo(buffer: ArrayBuffer): OpenedVariant {
  const headerLen = safetensorsHeaderLength(new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength)), buffer.byteLength, VARIANT_FILE);
  return parseVariantHeader(new Uint8Array(buffer, 8, headerLen), buffer.byteLength);
}

/**
 * The header's JSON bytes (the `headerLen` bytes after the length) of a file of `fileSize`
 * bytes -> what the variant is: the metadata checked field by field, every tensor's offsets
 * against the file's size. Nothing else of the file is needed (variant-layerwise.ts reads the
 * rest tensor by tensor).
 */
export function parseVariantHeader(headerBytes: Uint8Array, fileSize: number): OpenedVariant {
  // Offsets, shapes x dtypes and overlaps checked against the file's bytes first.
  const tensors = parseSafetensorsHeader(headerBytes, fileSize, VARIANT_FILE);
  const meta = (JSON.parse(new TextDecoder().decode(headerBytes)) as Record<string, unknown>).__metadata__;
  if (!isObject(meta) || meta.format !== FORMAT) throw bad(`not a Whittle variant (__metadata__.format is not '${FORMAT}')`);
  const version = Number(meta.whittle_version);
  if (!Number.isInteger(version) || version < 1) throw bad(`__metadata__.whittle_version ${JSON.stringify(meta.whittle_version)} is not a version`);
  if (version > WIDTH_VARIANT_VERSION) {
    throw new WhittleError('UNSUPPORTED', `${VARIANT_FILE} is variant format ${version}; this Whittle reads up to ${WIDTH_VARIANT_VERSION}`, { file: VARIANT_FILE, version });
  }
  if (meta.head !== 'tied' && meta.head !== 'stored') throw bad("__metadata__.head must be 'tied' or 'stored'");
  const setting = checkSetting(parseJsonField(meta, 'setting'));
  if (meta.method !== (setting.method ?? 'rtn')) throw bad(`__metadata__.method ${JSON.stringify(meta.method)} is not the setting's`);
  const storedRaw = parseJsonField(meta, 'stored');
  if (!isObject(storedRaw)) throw bad('__metadata__.stored is not an object');
  const stored = { block: checkStoredForm(storedRaw.block, 'block'), head: checkStoredForm(storedRaw.head, 'head') };
  const want = expectedForms(setting);
  if (!want.block.some((f) => sameForm(f, stored.block)) || !want.head.some((f) => sameForm(f, stored.head))) {
    throw bad(`stored forms ${JSON.stringify(stored)} do not belong to setting ${JSON.stringify(setting)}`);
  }
  const config = checkConfig(parseJsonField(meta, 'config'));
  // The RoPE tables (cos and sin, maxSeqLen x headSize / 2 floats each) follow from the config
  // alone, so no tensor bounds them: a real model's weights always outweigh them, a header that
  // claims a context its file could not hold a model for is hostile.
  const ropeBytes = 4 * config.maxSeqLen * headSizeOf(config);
  if (ropeBytes > fileSize) throw bad(`config.maxSeqLen ${config.maxSeqLen} needs ${ropeBytes} bytes of RoPE tables, more than the whole ${fileSize}-byte file`);
  const tiedHead = meta.head === 'tied';
  if (tiedHead && (!config.tiedEmbeddings || stored.head.form !== 'f32')) throw bad('a tied head must be fp32 with tied embeddings');
  // Sparse block linears: version 2, and the metadata's sparsity is the setting's.
  const sparsity = meta.sparsity === undefined ? undefined : checkSparsity(parseJsonField(meta, 'sparsity'));
  const width = meta.width === undefined ? undefined : checkWidth(parseJsonField(meta, 'width'), config);
  // Version 1 dense, 2 sparse, 3 narrowed blocks (sparse or not): each file the lowest that reads it.
  const wantVersion = width ? WIDTH_VARIANT_VERSION : sparsity ? SPARSE_VARIANT_VERSION : VARIANT_VERSION;
  if (JSON.stringify(sparsity) !== JSON.stringify(setting.sparsity) || version !== wantVersion) {
    throw bad(`__metadata__.sparsity ${JSON.stringify(sparsity ?? null)} (width ${width ? 'given' : 'absent'}) does not match the setting's ${JSON.stringify(setting.sparsity ?? null)} in a version ${version} file`);
  }
  if (sparsity?.pattern === '2:4') {
    // 2:4 groups run along every block linear's inputs: dim, nHeads * headSize, hidden.
    for (const K of [config.dim, config.nHeads * headSizeOf(config), config.hiddenDim]) if (K % 4 !== 0) throw bad(`2:4 sparsity needs inputs in groups of 4; the config has a linear with ${K}`);
  }
  return { info: { version, setting, stored, config, source: checkSource(parseJsonField(meta, 'source')), ...(sparsity ? { sparsity } : {}), ...(width ? { width } : {}) }, tensors, tiedHead };
}

/** The expected tensors of a variant (name -> allowed dtypes and shape), from the config and forms alone. */
function expectedTensors(info: VariantInfo, tiedHead: boolean): Map<string, { dtypes: string[]; shape: number[] }> {
  const c = info.config;
  const hs = headSizeOf(c);
  const out = new Map<string, { dtypes: string[]; shape: number[] }>();
  const float = (name: string, shape: number[]) => out.set(name, { dtypes: ['F32', 'BF16'], shape });
  const sp = info.sparsity;
  const linear = (name: string, form: StoredForm, K: number, N: number, sparse = false) => {
    const dense = denseLinearTensors(name, form, K, N);
    if (sparse && sp) {
      // Rows are outputs, columns inputs (K, padded to whole blocks for nbits); an unstructured
      // count (-1 here) is the index's popcount, checked against the values in readVariant.
      const cols = form.form === 'nbits' ? blockCount(K, form.blockSize) * form.blockSize : K;
      const x = form.form === 'f32' ? name : `${name}.q`;
      const count = sp.pattern === '2:4' ? twoFourValues(N, cols) : -1;
      out.set(`${x}.sparse_index`, { dtypes: ['U8'], shape: [sparseIndexBytes(N, cols, sp.pattern)] });
      const bits = form.form === 'f32' ? 32 : form.form === 'int8' ? 8 : form.bits;
      out.set(`${x}.sparse_values`, { dtypes: form.form === 'f32' ? ['F32', 'BF16'] : [form.form === 'int8' ? 'I8' : 'U8'], shape: [count < 0 ? -1 : form.form === 'nbits' ? sparseValueBytes(count, bits) : count] });
      // The element tensor is replaced; scales and zero points stay dense.
      for (const t of dense) if (t.name !== x) out.set(t.name, { dtypes: [t.dtype], shape: t.shape });
      return;
    }
    for (const t of dense) out.set(t.name, { dtypes: t.dtype === 'float' ? ['F32', 'BF16'] : [t.dtype], shape: t.shape });
  };
  float('embedding', [c.vocabSize, c.dim]);
  float('final_norm', [c.dim]);
  for (let i = 0; i < c.nLayers; i++) {
    const n = `layers.${i}`;
    const shape = blockShape(c, info.width, i);
    const cols = (shape.nHeads + 2 * shape.nKvHeads) * hs;
    float(`${n}.attn_norm`, [c.dim]);
    float(`${n}.ffn_norm`, [c.dim]);
    if (c.qkvBias) float(`${n}.qkv_bias`, [cols]);
    if (shape.narrowed && info.width?.plan.bias) {
      float(`${n}.wo_bias`, [c.dim]);
      float(`${n}.down_bias`, [c.dim]);
    }
    linear(`${n}.qkv`, info.stored.block, c.dim, cols, true);
    linear(`${n}.wo`, info.stored.block, shape.nHeads * hs, c.dim, true);
    linear(`${n}.gate_up`, info.stored.block, c.dim, 2 * shape.hidden, true);
    linear(`${n}.down`, info.stored.block, shape.hidden, c.dim, true);
  }
  if (!tiedHead) linear('head', info.stored.head, c.dim, c.vocabSize);
  return out;
}

/**
 * Every tensor of the header against what the config and forms imply (dtype, shape, none missing
 * or extra): after this, decoding a tensor cannot meet a size the header did not promise.
 */
export function checkVariantTensors(opened: OpenedVariant): void {
  const { info, tensors, tiedHead } = opened;
  const expected = expectedTensors(info, tiedHead);
  for (const [name, e] of tensors) {
    const want = expected.get(name);
    if (!want) throw bad(`unexpected tensor ${name} (not part of this config and setting)`, { tensor: name });
    if (!want.dtypes.includes(e.dtype)) throw bad(`${name} is ${e.dtype}, expected ${want.dtypes.join(' or ')}`, { tensor: name });
    if (e.shape.length !== want.shape.length || e.shape.some((d, i) => d !== want.shape[i] && want.shape[i] !== -1)) {
      throw bad(`${name} has shape [${e.shape.join(', ')}], the config implies [${want.shape.join(', ')}]`, { tensor: name });
    }
  }
  for (const name of expected.keys()) if (!tensors.has(name)) throw bad(`missing tensor ${name}`, { tensor: name });
}

/**
 * An unstructured sparse index's popcount (counted in place) must be its values' count before
 * either is decoded: the index is in the file, so a header cannot make the decoder allocate
 * what the file's bytes do not back. `indexBytes` gives an index tensor's bytes.
 */
export function checkSparseCount(opened: OpenedVariant, indexName: string, indexBytes: Uint8Array): void {
  const { info, tensors } = opened;
  if (info.sparsity?.pattern !== 'unstructured') return;
  const valuesName = indexName.replace(/index$/, 'values');
  const values = tensors.get(valuesName)!;
  const count = popcount(indexBytes);
  const n = values.dtype === 'U8' ? sparseValueBytes(count, info.stored.block.form === 'nbits' ? info.stored.block.bits : 8) : count;
  if (values.shape[0] !== n) throw bad(`${indexName} marks ${count} kept weights, ${valuesName} has ${values.shape[0]}`, { tensor: indexName });
}

/** Where a tensor's bytes are: `buffer` from `byteOffset` on (the whole file, or that tensor's own read). */
export type TensorBytesAt = (name: string) => { buffer: ArrayBuffer; byteOffset: number };

/**
 * Decoders of a checked variant's tensors (checkVariantTensors first) from wherever their bytes
 * are. Aligned F32, I8 and U8 tensors are views into those bytes (no copy); BF16 is widened.
 */
export function variantDecoder(opened: OpenedVariant, at: TensorBytesAt) {
  const { info, tensors } = opened;
  const entry = (name: string) => tensors.get(name)!;
  const float = (name: string): Float32Array => {
    const { buffer, byteOffset } = at(name);
    return decodeFloatTensor(entry(name), buffer, byteOffset);
  };
  const bytes = (name: string) => {
    const { buffer, byteOffset } = at(name);
    return new Uint8Array(buffer, byteOffset, entry(name).end - entry(name).begin);
  };
  const c = info.config;
  const hs = headSizeOf(c);
  const sparsity = info.sparsity;
  const linear = (name: string, form: StoredForm, K: number, N: number, sparse = false): LinearWeight => {
    if (sparse && sparsity) {
      const x = form.form === 'f32' ? name : `${name}.q`;
      const values: SparseValues = form.form === 'f32' ? float(`${x}.sparse_values`) : form.form === 'int8' ? new Int8Array(bytes(`${x}.sparse_values`).slice().buffer) : bytes(`${x}.sparse_values`);
      const like = form.form === 'f32' ? 'f32' : form.form === 'int8' ? { kind: 'int8' as const, scales: float(`${name}.scales`) } : { kind: 'nbits' as const, bits: form.bits, blockSize: form.blockSize, scales: float(`${name}.scales`), zeroPoints: bytes(`${name}.zero_points`), accuracyLevel: 1 as const };
      return decodeSparseLinear(bytes(`${x}.sparse_index`), values, like, K, N, sparsity.pattern, x);
    }
    if (form.form === 'f32') return float(name);
    if (form.form === 'int8') {
      const { buffer, byteOffset } = at(`${name}.q`);
      return { kind: 'int8', weight: { K, N, b: new Int8Array(buffer, byteOffset, K * N), scales: float(`${name}.scales`) } };
    }
    // accuracyLevel is a kernel choice, replaced by toKernelForms; 1 is the weight-only default.
    return { kind: 'nbits', accuracyLevel: 1, weight: { K, N, bits: form.bits, blockSize: form.blockSize, b: bytes(`${name}.q`), scales: float(`${name}.scales`), zeroPoints: bytes(`${name}.zero_points`) } };
  };
  return {
    float,
    /** Block `i` in its stored form. */
    layer(i: number): PreparedLayer {
      const n = `layers.${i}`;
      const shape = blockShape(c, info.width, i);
      return {
        attnNorm: float(`${n}.attn_norm`),
        qkv: linear(`${n}.qkv`, info.stored.block, c.dim, (shape.nHeads + 2 * shape.nKvHeads) * hs, true),
        ...(c.qkvBias ? { qkvBias: float(`${n}.qkv_bias`) } : {}),
        wo: linear(`${n}.wo`, info.stored.block, shape.nHeads * hs, c.dim, true),
        ffnNorm: float(`${n}.ffn_norm`),
        gateUp: linear(`${n}.gate_up`, info.stored.block, c.dim, 2 * shape.hidden, true),
        down: linear(`${n}.down`, info.stored.block, shape.hidden, c.dim, true),
        ...(shape.narrowed ? { kvHeads: shape.nKvHeads, hidden: shape.hidden } : {}),
        ...(tensors.has(`${n}.wo_bias`) ? { woBias: float(`${n}.wo_bias`), downBias: float(`${n}.down_bias`) } : {}),
      };
    },
    /** The head [dim, vocab] in its stored form; a tied one is `embedding` [vocab, dim] transposed. */
    head(embedding: () => Float32Array): LinearWeight {
      if (!opened.tiedHead) return linear('head', info.stored.head, c.dim, c.vocabSize);
      const table = embedding();
      const t = new Float32Array(c.dim * c.vocabSize);
      for (let v = 0; v < c.vocabSize; v++) for (let d = 0; d < c.dim; d++) t[d * c.vocabSize + v] = table[v * c.dim + d]!;
      return t;
    },
  };
}

/** The names of block `i`'s tensors in the file. */
export function layerTensorNames(opened: OpenedVariant, i: number): string[] {
  const prefix = `layers.${i}.`;
  return [...opened.tensors.keys()].filter((name) => name.startsWith(prefix));
}

/**
 * A variant file -> its stored-form PreparedWeights (run them through `toKernelForms` for a
 * backend) and what it is. Aligned F32, I8 and U8 tensors are views into `buffer` (no copy);
 * BF16 is widened. Every check runs before the first tensor is decoded. (A whole file in
 * memory; variant-layerwise.ts reads one from storage a block at a time.)
 */
export function readVariant(buffer: ArrayBuffer): { prepared: PreparedWeights; info: VariantInfo } {
  const opened = readVariantInfo(buffer);
  checkVariantTensors(opened);
  for (const [name, e] of opened.tensors) if (name.endsWith('.sparse_index')) checkSparseCount(opened, name, new Uint8Array(buffer, e.begin, e.end - e.begin));
  const { info } = opened;
  const decode = variantDecoder(opened, (name) => ({ buffer, byteOffset: opened.tensors.get(name)!.begin }));
  const c = info.config;
  const hs = headSizeOf(c);
  const layers = Array.from({ length: c.nLayers }, (_, i) => decode.layer(i));
  const embedding = decode.float('embedding');
  const head = decode.head(() => embedding);
  const rope = ropeTables(ropeInverseFrequencies(hs, c.ropeTheta, c.ropeScaling), c.maxSeqLen);
  return { info, prepared: { config: c, headSize: hs, embedding, layers, finalNorm: decode.float('final_norm'), head, ropeCos: rope.cos, ropeSin: rope.sin } };
}

/**
 * The source's config.json against the variant's config: the shapes must be the same model's
 * (a variant beside another model's config.json is BAD_MODEL, not a wrong-shaped run).
 */
export function checkVariantAgainstConfig(info: VariantInfo, fromConfigJson: LlamaConfig): void {
  const keys = ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'tiedEmbeddings'] as const;
  for (const k of keys) {
    if (info.config[k] !== fromConfigJson[k]) throw bad(`config.json says ${k} = ${String(fromConfigJson[k])}, the variant was made for ${String(info.config[k])}`);
  }
  if (headSizeOf(info.config) !== headSizeOf(fromConfigJson) || Boolean(info.config.qkvBias) !== Boolean(fromConfigJson.qkvBias)) throw bad('config.json describes other heads or biases than the variant was made for');
}
