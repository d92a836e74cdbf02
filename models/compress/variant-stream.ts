/**
 * A compressed variant written as a stream, one block at a time, straight from the source
 * weights: the first load with `compress` used to prepare the whole stored form (Llama-3.2-1B q8:
 * 1.3 GB of int8 beside a 1.05 GB fp32 table), compile from it, then copy it into the file's
 * parts; its peak was 3x the cached load's. Here the file's layout is computed from the config
 * and the setting before any weight is read (every tensor's dtype and shape follow from them),
 * the header goes out first, and each block is read, quantized, written and let go: what is held
 * at any time is one block, one chunk of table rows, and the head in its stored form (a tied
 * head is built from the table's rows; an untied one is read whole, transposed and quantized,
 * twice its fp32 size for that moment).
 *
 * The file is an ordinary variant (variant.ts; any reader reads it) with one difference of
 * order: writeVariant sorts all tensors F32, BF16, bytes; here the same sort applies within each
 * segment (table and final norm, then each block, then the head), the order they are produced
 * in. Alignment holds wherever each segment's bytes are a multiple of 4 (every real shape);
 * where not, readers copy the tensor (decodeFloatTensor).
 *
 * Floats from the source (table, norms, q/k/v biases) are declared BF16 when the reader says
 * every stored float is BF16 (`floatsExactInBf16`, as in the published bf16 folders) and the
 * preparation keeps them exact (the Q bias is scaled by 1/sqrt(head size): exact only for a power
 * of two), else F32: never a rounding, and checked as each is written (INTERNAL if a declared
 * BF16 value is not one). Unlike writeVariant, which looks at the values, an fp32-stored source
 * whose values happen to be bfloat16s (an upcast bf16 model) is written F32: bigger, not wrong. Settings that need more than the source's weights (AWQ, which measures
 * activations; sparsity, whose kept counts are known only after masking) or store fp32 blocks are
 * UNSUPPORTED here: the caller takes the whole-model path (prepareStored + writeVariant).
 *
 * @example
 * const stream = await streamVariant(config, reader, { linear: 'q8' }, 'wasm', { id, revision, format: 'hf' });
 * for await (const chunk of stream.chunks(signal)) await writer.write(chunk); // stream.size bytes in all
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { arraysIn, releaseNow } from '../../core/release.ts';
import { headSizeOf, type LlamaConfig, type WeightsSetting } from '../llama/types.ts';
import { prepareLayerwiseFrom, type PreparedLayer } from '../llama/prepare.ts';
import type { LlamaWeightReader } from '../llama/weight-reader.ts';
import { compressLinear } from './compress-prepared.ts';
import { headFormStreams, headFromRows } from './head-from-rows.ts';
import { resolveForms, validateWeights, type KernelBackend, type WeightForm } from './kernel-choice.ts';
import type { LinearWeight } from './linear.ts';
import { byDtypeRank, checkStoredForms, denseLinearTensors, encodeVariantHeader, linearTensors, sameForm, storedFormOf, variantMetadata, type OutTensor, type StoredForm, type TensorSpec, type VariantSource } from './variant.ts';
import { storagePlan } from './variant-forms.ts';
import { unstreamableReason } from './variant-name.ts';

/** Table rows per chunk of the stream (and per read of the source): a few MB. */
const TABLE_CHUNK_BYTES = 8 * 2 ** 20;

export interface VariantStream {
  /** Bytes of the whole file, known before any weight is read. */
  readonly size: number;
  /** The file's bytes in order; each chunk is a new array the consumer may keep or transfer. */
  chunks(signal?: AbortSignal): AsyncGenerator<Uint8Array, void, undefined>;
}

/** A kernel form as the variant stores it (storagePlan's `prepare` forms are all storable). */
function storedOf(f: WeightForm): StoredForm {
  if (f.form === 'f32') return { form: 'f32' };
  if (f.form === 'int8' && !f.grid) return { form: 'int8' };
  if (f.form === 'nbits') return { form: 'nbits', bits: f.bits, blockSize: f.blockSize };
  throw new WhittleError('INTERNAL', `streamVariant: ${JSON.stringify(f)} is not a stored form`);
}

const BYTES = { F32: 4, BF16: 2, I8: 1, U8: 1 } as const;

/** The header entries of one dense linear [K, N] stored as `form` (variant.ts denseLinearTensors), an fp32 weight as `floats`. */
function linearSpecs(name: string, form: StoredForm, K: number, N: number, floats: 'F32' | 'BF16'): TensorSpec[] {
  return denseLinearTensors(name, form, K, N).map((t) => {
    const dtype = t.dtype === 'float' ? floats : t.dtype;
    return { name: t.name, dtype, shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * BYTES[dtype] };
  });
}

const floatSpec = (name: string, shape: number[], dtype: 'F32' | 'BF16'): TensorSpec => ({ name, dtype, shape, byteLength: shape.reduce((a, b) => a * b, 1) * BYTES[dtype] });

/** fp32 values as the declared dtype's bytes (a new array); INTERNAL when BF16 was declared for a value that is not one. */
function floatBytes(v: Float32Array, dtype: 'F32' | 'BF16', name: string): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
  const words = new Uint32Array(v.buffer, v.byteOffset, v.length);
  const half = new Uint16Array(v.length);
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    if ((w & 0xffff) !== 0) throw new WhittleError('INTERNAL', `streamVariant: ${name}[${i}] = ${v[i]} is not a bfloat16, yet was declared BF16`, { tensor: name });
    half[i] = w >>> 16;
  }
  return new Uint8Array(half.buffer);
}

/** Checks a produced tensor against its header entry (INTERNAL on any difference: the header is already out). */
function checked(t: OutTensor, spec: TensorSpec): Uint8Array {
  if (t.name !== spec.name || t.dtype !== spec.dtype || t.bytes.byteLength !== spec.byteLength || t.shape.join() !== spec.shape.join()) {
    throw new WhittleError('INTERNAL', `streamVariant: ${t.name} came out ${t.dtype}[${t.shape.join(', ')}] (${t.bytes.byteLength} bytes); the header says ${spec.dtype}[${spec.shape.join(', ')}] (${spec.byteLength})`, { tensor: spec.name });
  }
  return t.bytes;
}

const isPowerOfTwo = (x: number): boolean => Math.log2(x) === Math.round(Math.log2(x));

/**
 * The variant of `reader`'s weights compressed with `setting` for `backend` (the stored forms
 * `storagePlan` gives, as the whole-model path makes them), as a stream. UNSUPPORTED for the
 * settings `unstreamableReason` names; the config's shapes are checked by the reader as blocks
 * are read (BAD_MODEL).
 */
export async function streamVariant(
  config: LlamaConfig,
  reader: LlamaWeightReader,
  setting: WeightsSetting,
  backend: KernelBackend,
  source: VariantSource,
  signal?: AbortSignal,
  /** Table rows per chunk (and per read); tests make it small. */
  tableChunkRows = Math.max(1, Math.floor(TABLE_CHUNK_BYTES / (config.dim * 4))),
): Promise<VariantStream> {
  validateWeights(setting);
  const why = unstreamableReason(setting);
  if (why) throw new WhittleError('UNSUPPORTED', `streamVariant: ${why}`);
  const plan = storagePlan(setting, backend, config);
  const forms = resolveForms(plan.prepare, backend, config);
  const headForm = plan.head ?? forms.head;
  const block = storedOf(forms.block);
  const head = storedOf(headForm);
  checkStoredForms(setting, block, head);
  const c = config;
  const hs = headSizeOf(c);
  // A tied fp32 head is the table transposed: not stored (variant.ts), rebuilt on load.
  const tied = c.tiedEmbeddings && head.form === 'f32';
  const floats: 'F32' | 'BF16' = reader.floatsExactInBf16 ? 'BF16' : 'F32';
  const biasFloats: 'F32' | 'BF16' = floats === 'BF16' && isPowerOfTwo(Math.sqrt(hs)) ? 'BF16' : 'F32';
  const qkvCols = (c.nHeads + 2 * c.nKvHeads) * hs;
  /** Each block's linears: the file's name, the prepared layer's field, K x N. */
  const linears = [['qkv', 'qkv', c.dim, qkvCols], ['wo', 'wo', c.nHeads * hs, c.dim], ['gate_up', 'gateUp', c.dim, 2 * c.hiddenDim], ['down', 'down', c.hiddenDim, c.dim]] as const;

  const tableSegment = byDtypeRank([floatSpec('embedding', [c.vocabSize, c.dim], floats), floatSpec('final_norm', [c.dim], floats)]);
  const layerSegment = (i: number): TensorSpec[] => {
    const n = `layers.${i}`;
    return byDtypeRank([
      floatSpec(`${n}.attn_norm`, [c.dim], floats),
      floatSpec(`${n}.ffn_norm`, [c.dim], floats),
      ...(c.qkvBias ? [floatSpec(`${n}.qkv_bias`, [qkvCols], biasFloats)] : []),
      ...linears.flatMap(([key, , K, N]) => linearSpecs(`${n}.${key}`, block, K, N, floats)),
    ]);
  };
  const layerSegments = Array.from({ length: c.nLayers }, (_, i) => layerSegment(i));
  const headSegment = tied ? [] : byDtypeRank(linearSpecs('head', head, c.dim, c.vocabSize, floats));
  const metadata = variantMetadata({ setting, block, head, config: c, source, tied });
  const all = [...tableSegment, ...layerSegments.flat(), ...headSegment];
  const header = encodeVariantHeader(metadata, all);
  const size = header.byteLength + all.reduce((n, t) => n + t.byteLength, 0);
  throwIfAborted(signal);
  // Blocks and head prepared as the whole-model path prepares them (prepareStored), one at a time.
  const layerwise = await prepareLayerwiseFrom(c, reader, { weights: plan.prepare, backend, ...(signal ? { signal } : {}) });
  // A reader without row reads (none built in has none) gives its table once, sliced per chunk.
  let whole: Float32Array | null = null;
  const readRows = async (first: number, count: number): Promise<Float32Array> => {
    if (reader.embeddingRange) return reader.embeddingRange(first, count);
    whole ??= await reader.tokenEmbedding();
    return whole.slice(first * c.dim, (first + count) * c.dim);
  };

  /** The stored head [dim, vocab] (untied, or tied in an 8-bit form), built from the table's rows where its form allows. */
  const storedHead = async (until?: AbortSignal): Promise<LinearWeight> => {
    if (c.tiedEmbeddings && headFormStreams(headForm)) {
      const fromRows = await headFromRows(readRows, c.vocabSize, c.dim, headForm, until);
      if (fromRows) return fromRows;
    }
    if (!plan.head) return layerwise.head();
    // storagePlan's head: prepared fp32, then quantized (variant-forms.ts withStoredHead).
    const fp32 = await layerwise.head();
    if (!(fp32 instanceof Float32Array)) throw new WhittleError('INTERNAL', 'streamVariant: the head was prepared quantized');
    return compressLinear(fp32, c.dim, c.vocabSize, headForm);
  };

  async function* chunks(until?: AbortSignal): AsyncGenerator<Uint8Array, void, undefined> {
    yield header.slice();
    for (const spec of tableSegment) {
      throwIfAborted(until);
      if (spec.name === 'final_norm') {
        yield floatBytes(layerwise.finalNorm, spec.dtype as 'F32' | 'BF16', spec.name);
        continue;
      }
      for (let first = 0; first < c.vocabSize; first += tableChunkRows) {
        throwIfAborted(until);
        const rows = await readRows(first, Math.min(tableChunkRows, c.vocabSize - first));
        const bytes = floatBytes(rows, spec.dtype as 'F32' | 'BF16', spec.name);
        releaseNow(rows); // embeddingRange's rows (or the slice above) are this call's alone
        yield bytes;
      }
    }
    for (let i = 0; i < c.nLayers; i++) {
      throwIfAborted(until);
      const layer = await layerwise.layer(i);
      const produced = layerTensors(layer, i);
      // The block's arrays are copied into `produced`: release them now, not at the next GC.
      for (const a of arraysIn(layer)) releaseNow(a);
      for (const spec of layerSegments[i]!) yield checked(produced.get(spec.name) ?? missing(spec.name), spec);
    }
    if (!tied) {
      throwIfAborted(until);
      const w = await storedHead(until);
      if (!sameForm(storedFormOf(w), head)) throw new WhittleError('INTERNAL', `streamVariant: the head came out ${JSON.stringify(storedFormOf(w))}, the header says ${JSON.stringify(head)}`);
      // An fp32 head is written as declared (linearTensors would pick BF16 or F32 by its values).
      const tensors = w instanceof Float32Array ? [{ name: 'head', dtype: floats, shape: [c.dim, c.vocabSize], bytes: floatBytes(w, floats, 'head') }] : linearTensors('head', w, c.dim, c.vocabSize);
      const produced = new Map(tensors.map((t) => [t.name, t] as const));
      for (const a of arraysIn(w)) releaseNow(a);
      for (const spec of headSegment) yield checked(produced.get(spec.name) ?? missing(spec.name), spec);
    }
  }

  /** Block `i`'s tensors as the file holds them, by name. */
  const layerTensors = (l: PreparedLayer, i: number): Map<string, OutTensor> => {
    const n = `layers.${i}`;
    const out: OutTensor[] = [];
    const float = (name: string, v: Float32Array, dtype: 'F32' | 'BF16') => out.push({ name, dtype, shape: [v.length], bytes: floatBytes(v, dtype, name) });
    float(`${n}.attn_norm`, l.attnNorm, floats);
    float(`${n}.ffn_norm`, l.ffnNorm, floats);
    if (l.qkvBias) float(`${n}.qkv_bias`, l.qkvBias, biasFloats);
    for (const [key, field, K, N] of linears) {
      const w = l[field];
      if (!sameForm(storedFormOf(w), block)) throw new WhittleError('INTERNAL', `streamVariant: ${n}.${key} came out ${JSON.stringify(storedFormOf(w))}, the header says ${JSON.stringify(block)}`);
      out.push(...linearTensors(`${n}.${key}`, w, K, N));
    }
    return new Map(out.map((t) => [t.name, t] as const));
  };
  const missing = (name: string): never => {
    throw new WhittleError('INTERNAL', `streamVariant: ${name} was declared but not produced`, { tensor: name });
  };

  return { size, chunks };
}
