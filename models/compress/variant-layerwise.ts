/**
 * A variant file read from storage a block at a time, as the layerwise weights a plan compiles
 * from (models/llama/prepare.ts `LayerwiseWeights`), instead of the whole file in memory and its
 * decoded weights held beside onnxruntime's copy (variant.ts `readVariant`).
 *
 * Why: a cached variant of Llama-3.2-1B at q8 is ~1.7 GB. Read whole, the load held the file,
 * the decoded stored form (int8 views into it, plus the fp32-widened embedding: 1.05 GB) and, for
 * as long as the model lived, the stored form again for re-plans, beside the sessions' own copy.
 * Read layerwise, only the header is kept: each compile reads the blocks of the segment it is
 * building (a few tensors' byte ranges of the Blob the store hands out), turns them into the
 * backend's kernel form (variant-forms.ts) and lets them go once onnxruntime holds them; tokens of
 * a big table are looked up row by row from the file (runner.ts host lookup), so the table is
 * never in memory whole unless a graph gathers from it.
 *
 * The file is hostile until checked: the header is bounds-checked and every tensor's dtype and
 * shape checked against the config before anything else is read (variant.ts), and an
 * unstructured sparse index's popcount against its values' count before that block is decoded.
 *
 * @example
 * const opened = await openVariantFile(blob);          // header only
 * const weights = variantLayerwise(opened, 'wasm');     // nothing read yet
 * const runner = await PlanRunner.compile(ort, 'wasm', await weights, plan, 'onnx');
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { arraysIn, releaseNow } from '../../core/release.ts';
import { byteSource, readSafetensorsHeaderBytes, type ByteSource, type FileBytes } from '../import/hf/byte-source.ts';
import { decodeFloatTensor } from '../import/hf/safetensors.ts';
import { readRowByRow } from '../llama/weight-reader.ts';
import type { LayerwiseWeights } from '../llama/prepare.ts';
import { ropeInverseFrequencies, ropeTables } from '../llama/rope.ts';
import { headSizeOf } from '../llama/types.ts';
import { resolveForms, type KernelBackend } from './kernel-choice.ts';
import { checkSparseCount, checkVariantTensors, layerTensorNames, parseVariantHeader, variantDecoder, VARIANT_FILE, type OpenedVariant } from './variant.ts';
import { layerToKernelForm, toKernelForm } from './variant-forms.ts';

/** A variant whose header was read and checked, and the file to read its tensors from. */
export interface VariantFile extends OpenedVariant {
  source: ByteSource;
  /** The file itself (for the calls that read it whole). */
  file: FileBytes;
}

/** Reads and checks a variant file's header (a few KB), nothing else. */
export async function openVariantFile(file: FileBytes): Promise<VariantFile> {
  const source = byteSource(file, VARIANT_FILE);
  const opened = parseVariantHeader(await readSafetensorsHeaderBytes(source), source.size);
  checkVariantTensors(opened);
  return { ...opened, source, file };
}

type Read = { buffer: ArrayBuffer; byteOffset: number };

/**
 * The variant's weights in `backend`'s kernel form for its setting, read from the file when a
 * compile asks for them. The final norm is read now (a few KB); blocks, the head and the table
 * on each call (a re-plan reads them again: no quantization for q8, a requantization for WASM's
 * q4, as `TextEngine.fromStored` did from held weights).
 */
export async function variantLayerwise(file: VariantFile, backend: KernelBackend, signal?: AbortSignal): Promise<LayerwiseWeights> {
  const { info, tensors, source } = file;
  const c = info.config;
  const hs = headSizeOf(c);
  const forms = resolveForms(info.setting, backend, c);
  const read = (name: string): Promise<Read> => {
    const e = tensors.get(name)!;
    return source.read(e.begin, e.end);
  };
  /** Decoders over the reads of `names` (each tensor's own bytes). */
  const decoderOver = async (names: readonly string[]) => {
    const reads = new Map<string, Read>();
    for (const name of names) reads.set(name, await read(name));
    return { reads, decode: variantDecoder(file, (name) => reads.get(name)!) };
  };
  /** The reads the result does not view are garbage now: freed at once when the file's reads are our own (core/release.ts). */
  const releaseUnused = (reads: Map<string, Read>, result: unknown) => {
    if (!source.freshReads) return;
    const kept = new Set(arraysIn(result).map((a) => a.buffer));
    for (const r of reads.values()) if (!kept.has(r.buffer)) releaseNow(new Uint8Array(r.buffer));
  };
  const readTable = async (): Promise<Float32Array> => {
    throwIfAborted(signal);
    const { reads, decode } = await decoderOver(['embedding']);
    const table = decode.float('embedding');
    releaseUnused(reads, table);
    return table;
  };
  const finalNorm = (await decoderOver(['final_norm'])).decode.float('final_norm').slice();
  const rope = ropeTables(ropeInverseFrequencies(hs, c.ropeTheta, c.ropeScaling), c.maxSeqLen);
  const table = tensors.get('embedding')!;
  const rowBytes = (table.end - table.begin) / c.vocabSize;
  return {
    config: c,
    headSize: hs,
    finalNorm,
    ropeCos: rope.cos,
    ropeSin: rope.sin,
    headIsFp32: forms.head.form === 'f32',
    headReadsTable: file.tiedHead,
    // Views into a Blob's reads are ours alone; into an in-memory file they are the caller's.
    fresh: { layers: source.freshReads, head: source.freshReads || file.tiedHead, table: source.freshReads },
    layer: async (i) => {
      throwIfAborted(signal);
      if (!Number.isInteger(i) || i < 0 || i >= c.nLayers) throw new WhittleError('INTERNAL', `variant block ${i} is outside 0..${c.nLayers - 1}`);
      const names = layerTensorNames(file, i);
      const { reads, decode } = await decoderOver(names);
      for (const name of names) {
        if (!name.endsWith('.sparse_index')) continue;
        const r = reads.get(name)!;
        checkSparseCount(file, name, new Uint8Array(r.buffer, r.byteOffset, tensors.get(name)!.end - tensors.get(name)!.begin));
      }
      const layer = layerToKernelForm(decode.layer(i), forms.block, c, hs);
      releaseUnused(reads, layer);
      return layer;
    },
    embedding: readTable,
    head: async (given) => {
      throwIfAborted(signal);
      const { reads, decode } = await decoderOver(file.tiedHead ? [] : [...tensors.keys()].filter((n) => n === 'head' || n.startsWith('head.')));
      const t = file.tiedHead ? (given ?? (await readTable())) : null;
      const head = toKernelForm(decode.head(() => t!), forms.head, c.dim, c.vocabSize);
      releaseUnused(reads, head);
      // A table read here for the transpose alone is garbage now (one the caller gave is the caller's).
      if (t && !given && source.freshReads) releaseNow(t);
      return head;
    },
    embeddingRows: (ids) =>
      readRowByRow(ids, c.vocabSize, c.dim, async (id) => {
        const begin = table.begin + id * rowBytes;
        const r = await source.read(begin, begin + rowBytes);
        return decodeFloatTensor({ ...table, shape: [1, c.dim], begin, end: begin + rowBytes }, r.buffer, r.byteOffset);
      }),
  };
}
