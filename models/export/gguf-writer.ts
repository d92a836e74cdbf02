/**
 * The GGUF v3 container (ggml's `docs/gguf.md`), written in one pass into one buffer:
 *
 *   "GGUF" | u32 version = 3 | u64 tensor_count | u64 kv_count
 *   kv_count x   (string key, u32 value type, value)
 *   tensor_count x (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)
 *   zero padding to `general.alignment` (32 unless a KV says otherwise)
 *   tensor data, each tensor at its offset (relative to the data start, a multiple of the alignment)
 *
 * Strings are u64 byte length + UTF-8 bytes (no terminator); everything is little-endian.
 * `ne` lists dimensions innermost first: a torch [out, in] matrix is ne = [in, out]. This file
 * knows nothing about models: gguf.ts decides the keys and tensors.
 *
 * @example
 * const bytes = writeGguf([{ key: 'general.architecture', value: { type: 'string', value: 'llama' } }], [{ name: 'x', ne: [4], type: GGML_TYPE.F32, data }]);
 */
import { WhittleError } from '../../core/errors.ts';

/** ggml tensor types this exporter writes (ggml.h `enum ggml_type`). */
export const GGML_TYPE = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8 } as const;
export type GgmlType = (typeof GGML_TYPE)[keyof typeof GGML_TYPE];

/** GGUF metadata value types (`enum gguf_type`). */
export const GGUF_VALUE = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

export type GgufValue =
  | { type: 'u32'; value: number }
  | { type: 'i32'; value: number }
  | { type: 'f32'; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'string[]'; value: readonly string[] }
  | { type: 'f32[]'; value: ArrayLike<number> }
  | { type: 'i32[]'; value: ArrayLike<number> };

export interface GgufKv {
  key: string;
  value: GgufValue;
}

export interface GgufTensor {
  name: string;
  /** Dimensions innermost first (ggml's ne). */
  ne: readonly number[];
  type: GgmlType;
  /** The tensor's bytes in `type`'s layout (rows of blocks for quantized types). */
  data: Uint8Array;
}

export const GGUF_DEFAULT_ALIGNMENT = 32;

const utf8 = new TextEncoder();
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;

/** Bytes a value takes after its type tag. */
function valueBytes(v: GgufValue): number {
  switch (v.type) {
    case 'u32':
    case 'i32':
    case 'f32':
      return 4;
    case 'bool':
      return 1;
    case 'string':
      return 8 + utf8.encode(v.value).length;
    case 'string[]':
      return 4 + 8 + v.value.reduce((n, s) => n + 8 + utf8.encode(s).length, 0);
    case 'f32[]':
    case 'i32[]':
      return 4 + 8 + 4 * v.value.length;
  }
}

/** A cursor over a DataView that writes GGUF's primitives. */
class Cursor {
  offset = 0;
  private readonly bytes: Uint8Array;
  constructor(private readonly view: DataView) {
    this.bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  }
  u8(x: number) {
    this.view.setUint8(this.offset, x);
    this.offset += 1;
  }
  u32(x: number) {
    this.view.setUint32(this.offset, x, true);
    this.offset += 4;
  }
  i32(x: number) {
    this.view.setInt32(this.offset, x, true);
    this.offset += 4;
  }
  f32(x: number) {
    this.view.setFloat32(this.offset, x, true);
    this.offset += 4;
  }
  u64(x: number) {
    this.view.setBigUint64(this.offset, BigInt(x), true);
    this.offset += 8;
  }
  raw(b: Uint8Array) {
    this.bytes.set(b, this.offset);
    this.offset += b.length;
  }
  string(s: string) {
    const b = utf8.encode(s);
    this.u64(b.length);
    this.raw(b);
  }
}

function writeValue(c: Cursor, v: GgufValue): void {
  switch (v.type) {
    case 'u32':
      return c.u32(v.value);
    case 'i32':
      return c.i32(v.value);
    case 'f32':
      return c.f32(v.value);
    case 'bool':
      return c.u8(v.value ? 1 : 0);
    case 'string':
      return c.string(v.value);
    case 'string[]':
      c.u32(GGUF_VALUE.STRING);
      c.u64(v.value.length);
      for (const s of v.value) c.string(s);
      return;
    case 'f32[]':
      c.u32(GGUF_VALUE.FLOAT32);
      c.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) c.f32(v.value[i]!);
      return;
    case 'i32[]':
      c.u32(GGUF_VALUE.INT32);
      c.u64(v.value.length);
      for (let i = 0; i < v.value.length; i++) c.i32(v.value[i]!);
      return;
  }
}

const TAG: Record<GgufValue['type'], number> = {
  u32: GGUF_VALUE.UINT32,
  i32: GGUF_VALUE.INT32,
  f32: GGUF_VALUE.FLOAT32,
  bool: GGUF_VALUE.BOOL,
  string: GGUF_VALUE.STRING,
  'string[]': GGUF_VALUE.ARRAY,
  'f32[]': GGUF_VALUE.ARRAY,
  'i32[]': GGUF_VALUE.ARRAY,
};

/**
 * The whole file as one buffer. The alignment is `general.alignment` when a KV sets it (it must
 * be a u32 power of two), else 32. Keys and tensor names must be unique, as llama.cpp requires.
 */
export function writeGguf(kvs: readonly GgufKv[], tensors: readonly GgufTensor[]): Uint8Array {
  const seen = new Set<string>();
  for (const name of [...kvs.map((k) => `kv:${k.key}`), ...tensors.map((t) => `tensor:${t.name}`)]) {
    if (seen.has(name)) throw new WhittleError('INVALID_ARGUMENT', `GGUF: duplicate ${name}`);
    seen.add(name);
  }
  const alignKv = kvs.find((k) => k.key === 'general.alignment');
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  if (alignKv) {
    if (alignKv.value.type !== 'u32' || alignKv.value.value <= 0 || (alignKv.value.value & (alignKv.value.value - 1)) !== 0) {
      throw new WhittleError('INVALID_ARGUMENT', 'GGUF: general.alignment must be a u32 power of two');
    }
    alignment = alignKv.value.value;
  }

  let headerBytes = 4 + 4 + 8 + 8;
  for (const kv of kvs) headerBytes += 8 + utf8.encode(kv.key).length + 4 + valueBytes(kv.value);
  const offsets: number[] = [];
  let dataBytes = 0;
  for (const t of tensors) {
    if (t.ne.length < 1 || t.ne.length > 4 || t.ne.some((d) => !Number.isInteger(d) || d <= 0)) {
      throw new WhittleError('INVALID_ARGUMENT', `GGUF: tensor ${t.name} has dimensions [${t.ne.join(', ')}]`);
    }
    headerBytes += 8 + utf8.encode(t.name).length + 4 + 8 * t.ne.length + 4 + 8;
    dataBytes = alignUp(dataBytes, alignment);
    offsets.push(dataBytes);
    dataBytes += t.data.length;
  }
  const dataStart = alignUp(headerBytes, alignment);
  const out = new Uint8Array(dataStart + alignUp(dataBytes, alignment));
  const c = new Cursor(new DataView(out.buffer));
  c.raw(utf8.encode('GGUF'));
  c.u32(3);
  c.u64(tensors.length);
  c.u64(kvs.length);
  for (const kv of kvs) {
    c.string(kv.key);
    c.u32(TAG[kv.value.type]);
    writeValue(c, kv.value);
  }
  tensors.forEach((t, i) => {
    c.string(t.name);
    c.u32(t.ne.length);
    for (const d of t.ne) c.u64(d);
    c.u32(t.type);
    c.u64(offsets[i]!);
  });
  if (c.offset !== headerBytes) throw new WhittleError('INTERNAL', `GGUF: header is ${c.offset} bytes, planned ${headerBytes}`);
  tensors.forEach((t, i) => out.set(t.data, dataStart + offsets[i]!));
  return out;
}
