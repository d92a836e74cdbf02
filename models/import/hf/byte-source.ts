/**
 * A file whose bytes are read by range: a Blob (an OPFS/Cache Storage file in a worker, or Node's
 * `fs.openAsBlob`, both backed by disk) or an ArrayBuffer already in memory. Model shards are read
 * through this one tensor at a time, so a multi-GB shard is never in memory whole.
 *
 * @example
 * const src = byteSource(file, 'model-00001-of-00002.safetensors');
 * const head = await src.read(0, 8);
 */
import { safetensorsHeaderLength } from './safetensors.ts';
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /** Bytes [begin, end) as a fresh ArrayBuffer (a view of the whole buffer for in-memory sources). */
  read(begin: number, end: number): Promise<{ buffer: ArrayBuffer; byteOffset: number }>;
  /** Whether each read's buffer is new and the reader's alone (a Blob's), so it may be released once used. */
  readonly freshReads: boolean;
}

export type FileBytes = ArrayBuffer | Blob;

export function byteSource(file: FileBytes, name: string): ByteSource {
  if (file instanceof ArrayBuffer) {
    // No copy: the caller's buffer outlives the read, and views into it are what tensorAsFloat32 gives too.
    return { name, size: file.byteLength, freshReads: false, read: async (begin) => ({ buffer: file, byteOffset: begin }) };
  }
  return {
    name,
    size: file.size,
    freshReads: true,
    read: async (begin, end) => ({ buffer: await file.slice(begin, end).arrayBuffer(), byteOffset: 0 }),
  };
}

/**
 * A safetensors file's JSON header bytes, read from `source` (the 8-byte length, then the header
 * it announces, bounds-checked against the file before anything is allocated from it).
 */
export async function readSafetensorsHeaderBytes(source: ByteSource): Promise<Uint8Array> {
  const first = await source.read(0, Math.min(8, source.size));
  const headerLen = safetensorsHeaderLength(new Uint8Array(first.buffer, first.byteOffset, Math.min(8, source.size)), source.size, source.name);
  const header = await source.read(8, 8 + headerLen);
  return new Uint8Array(header.buffer, header.byteOffset, headerLen);
}

/** A whole (small) file's bytes: config.json, tokenizer.json and the like. */
export async function readWhole(file: FileBytes): Promise<ArrayBuffer> {
  return file instanceof ArrayBuffer ? file : file.arrayBuffer();
}
