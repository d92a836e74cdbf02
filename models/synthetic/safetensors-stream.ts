/**
 * Writes a checkpoint as `save_pretrained` lays it out, streaming every tensor to disk:
 * - shards split like huggingface_hub's `split_torch_state_dict_into_shards` (state_dict order; a
 *   tensor over the limit gets a shard of its own; otherwise a new shard starts when the next
 *   tensor would pass the limit), named `model-00001-of-0000N.safetensors`, or one
 *   `model.safetensors` when everything fits in one;
 * - each file as the Rust `safetensors` serializer writes it: u64 little-endian header length,
 *   compact JSON header (`__metadata__` first, then tensors sorted by name, which is also the data
 *   order), padded with spaces to a multiple of 8 bytes;
 * - `model.safetensors.index.json` as transformers writes it (`json.dumps(index, indent=2,
 *   sort_keys=True) + "\n"`).
 * Memory stays at one chunk of one tensor, whatever the model size.
 *
 * @example
 * writeCheckpoint(dir, layout, (t) => tensorChunks(seed, t.name, elementCount(t), t.init, 'bf16'), { dtype: 'bf16', maxShardBytes: 500e6 });
 */
import { closeSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { elementCount, type TensorPlan } from './checkpoint-layout.ts';
import { DTYPE_BYTES, SAFETENSORS_DTYPE, type SyntheticDtype } from './values.ts';

export interface CheckpointOptions {
  dtype: SyntheticDtype;
  /** Shard size limit in bytes of tensor data (transformers' `max_shard_size`). */
  maxShardBytes: number;
}

/** Tensors grouped into shards the way huggingface_hub groups them. */
export function planShards(tensors: readonly TensorPlan[], bytesOf: (t: TensorPlan) => number, maxShardBytes: number): TensorPlan[][] {
  const shards: TensorPlan[][] = [];
  let current: TensorPlan[] = [];
  let currentBytes = 0;
  for (const t of tensors) {
    const size = bytesOf(t);
    if (size > maxShardBytes) {
      shards.push([t]);
      continue;
    }
    if (current.length > 0 && currentBytes + size > maxShardBytes) {
      shards.push(current);
      current = [];
      currentBytes = 0;
    }
    current.push(t);
    currentBytes += size;
  }
  if (current.length > 0) shards.push(current);
  return shards;
}

/** Code-point order, as Rust's and Python's string comparison (tensor names are ASCII). */
const byName = (a: TensorPlan, b: TensorPlan) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** One safetensors file, tensor data pulled chunk by chunk from `chunks`. */
function writeSafetensorsFile(path: string, tensors: readonly TensorPlan[], dtype: SyntheticDtype, chunks: (t: TensorPlan) => Iterable<Uint8Array>): void {
  const sorted = [...tensors].sort(byName);
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of sorted) {
    const size = elementCount(t) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype: SAFETENSORS_DTYPE[dtype], shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8); // ASCII: one byte per character
  const fd = openSync(path, 'w');
  try {
    writeSync(fd, head);
    for (const t of sorted) {
      let written = 0;
      for (const bytes of chunks(t)) {
        writeSync(fd, bytes);
        written += bytes.length;
      }
      if (written !== elementCount(t) * DTYPE_BYTES[dtype]) throw new Error(`${t.name}: wrote ${written} bytes, the header says ${elementCount(t) * DTYPE_BYTES[dtype]}`);
    }
  } finally {
    closeSync(fd);
  }
}

/** Writes the shards (and the index when there is more than one) into `dir`; returns the file names. */
export function writeCheckpoint(dir: string, tensors: readonly TensorPlan[], chunks: (t: TensorPlan) => Iterable<Uint8Array>, options: CheckpointOptions): string[] {
  const bytesOf = (t: TensorPlan) => elementCount(t) * DTYPE_BYTES[options.dtype];
  const shards = planShards(tensors, bytesOf, options.maxShardBytes);
  if (shards.length === 1) {
    writeSafetensorsFile(join(dir, 'model.safetensors'), shards[0]!, options.dtype, chunks);
    return ['model.safetensors'];
  }
  const n = String(shards.length).padStart(5, '0');
  const weightMap: Record<string, string> = {};
  let totalSize = 0;
  const names = shards.map((shard, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${n}.safetensors`;
    writeSafetensorsFile(join(dir, name), shard, options.dtype, chunks);
    for (const t of shard) {
      weightMap[t.name] = name;
      totalSize += bytesOf(t);
    }
    return name;
  });
  const sortedMap = Object.fromEntries(Object.keys(weightMap).sort().map((k) => [k, weightMap[k]!]));
  writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: totalSize }, weight_map: sortedMap }, null, 2) + '\n');
  return [...names, 'model.safetensors.index.json'];
}
