/**
 * A file whose bytes are read by range: a Blob (an OPFS/Cache Storage file in a worker, or Node's
 * `fs.openAsBlob`, both backed by disk) or an ArrayBuffer already in memory. Model shards are read
 * through this one tensor at a time, so a multi-GB shard is never in memory whole.
 *
 * @example
 * const src = byteSource(file, 'model-00001-of-00002.safetensors');
 * const head = await src.read(0, 8);
 */
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

/** A whole (small) file's bytes: config.json, tokenizer.json and the like. */
export async function readWhole(file: FileBytes): Promise<ArrayBuffer> {
  return file instanceof ArrayBuffer ? file : file.arrayBuffer();
}
