/**
 * safetensors reader: u64 little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the data.
 * F32 tensors are zero-copy views when 4-byte aligned; F16/BF16 are widened to float32 (the
 * graphs run float32), everything else is UNSUPPORTED.
 *
 * Model files come from arbitrary URLs, so the header is treated as hostile: every claim it makes
 * (header length, offsets, shape x dtype) is checked against the bytes actually present before
 * anything is allocated from it. A header claiming terabytes is a BAD_MODEL error, not an
 * out-of-memory crash or an out-of-range view.
 */
import { WhittleError } from '../../../core/errors.ts';
import { showValue } from '../../../core/show-value.ts';

export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  begin: number; // absolute byte offset in the file
  end: number;
}

export interface SafetensorsFile {
  name: string;
  tensors: Map<string, SafetensorsEntry>;
  buffer: ArrayBuffer;
}

/** The format's own limit (the Rust reader refuses larger headers): a bigger one is hostile, not a model. */
const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of every dtype the format defines; unknown dtypes are only bounds-checked. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U64: 8, U32: 4, U16: 2, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1,
};

const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Header length from the first 8 bytes, checked against the file's size and the format's limit. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, name = 'model.safetensors'): number {
  const bad = (message: string) => new WhittleError('BAD_MODEL', `${name}: ${message}`, { file: name });
  if (fileSize < 8 || first8.byteLength < 8) throw bad('too short for a safetensors header');
  // Compared as a BigInt: a u64 past 2^53 must not round into something that looks plausible.
  const claimed = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (claimed > BigInt(fileSize - 8)) throw bad(`header of ${claimed} bytes runs past the end of the file (${fileSize} bytes)`);
  const headerLen = Number(claimed);
  if (headerLen > MAX_HEADER_BYTES) throw bad(`header of ${headerLen} bytes is over the format's ${MAX_HEADER_BYTES}-byte limit`);
  return headerLen;
}

/**
 * The JSON header (the `headerLen` bytes after the length) -> checked tensor entries with absolute
 * offsets, for a file of `fileSize` bytes. Needs only the header's bytes, so a loader can open a
 * multi-GB shard from a Blob and read its tensors one at a time.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, fileSize: number, name = 'model.safetensors'): Map<string, SafetensorsEntry> {
  const bad = (message: string, tensor?: string) => new WhittleError('BAD_MODEL', `${name}: ${message}`, { file: name, ...(tensor !== undefined ? { tensor } : {}) });
  const headerLen = headerBytes.byteLength;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${name}: header is not UTF-8 JSON`, { file: name }, { cause: err });
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataBytes = fileSize - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [key, value] of Object.entries(header as Record<string, unknown>)) {
    if (key === '__metadata__') continue;
    const v = (typeof value === 'object' && value !== null ? value : {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const { dtype, shape, data_offsets: offsets } = v;
    if (typeof dtype !== 'string' || !Array.isArray(shape) || !Array.isArray(offsets) || offsets.length !== 2) throw bad(`malformed header entry for ${key}`, key);
    if (!shape.every(isIndex)) throw bad(`${key} has a shape that is not a list of non-negative integers`, key);
    const [b, e] = offsets as unknown[];
    if (!isIndex(b) || !isIndex(e) || b > e) throw bad(`${key} has invalid data_offsets ${showValue(offsets)}`, key);
    if (e > dataBytes) throw bad(`truncated or lying header: ${key} ends at data byte ${e}, the file holds ${dataBytes}`, key);
    const width = DTYPE_BYTES[dtype];
    if (width !== undefined) {
      // Element count, refusing overflow: a shape that multiplies past 2^53 cannot match any real byte range.
      let count = 1;
      for (const d of shape as number[]) {
        count *= d;
        if (!Number.isSafeInteger(count)) throw bad(`${key} claims a shape [${shape.join(', ')}] too large for any file`, key);
      }
      if (count * width !== e - b) throw bad(`${key} is ${dtype}[${shape.join(', ')}] (${count * width} bytes) but its data range holds ${e - b}`, key);
    }
    tensors.set(key, { dtype, shape: shape as number[], begin: dataStart + b, end: dataStart + e });
  }
  // Overlapping tensors are never written by a real exporter; refusing them keeps one byte from meaning two things.
  const ranges = [...tensors.entries()].filter(([, t]) => t.end > t.begin).sort((x, y) => x[1].begin - y[1].begin);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]![1].begin < ranges[i - 1]![1].end) throw bad(`${ranges[i]![0]} overlaps ${ranges[i - 1]![0]}`, ranges[i]![0]);
  }
  return tensors;
}

/** A whole safetensors file in memory: header checked, tensors readable with tensorAsFloat32. */
export function readSafetensors(buffer: ArrayBuffer, name = 'model.safetensors'): SafetensorsFile {
  const headerLen = safetensorsHeaderLength(new Uint8Array(buffer, 0, Math.min(8, buffer.byteLength)), buffer.byteLength, name);
  return { name, tensors: parseSafetensorsHeader(new Uint8Array(buffer, 8, headerLen), buffer.byteLength, name), buffer };
}

/** bfloat16 is the top half of a float32, so widening is exact. */
function bf16ToF32(bits: Uint16Array): Float32Array {
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = bits[i]! << 16;
  return new Float32Array(out.buffer);
}

function f16ToF32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) {
    const h = bits[i]!;
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) out[i] = sign * 2 ** -14 * (frac / 1024);
    else if (exp === 31) out[i] = frac ? NaN : sign * Infinity;
    else out[i] = sign * 2 ** (exp - 15) * (1 + frac / 1024);
  }
  return out;
}

/** The entry for `key`, checked against `shape` (when given) and to be a float dtype the graphs can widen. */
export function floatTensorEntry(file: Pick<SafetensorsFile, 'name' | 'tensors'>, key: string, shape?: readonly number[]): SafetensorsEntry {
  const e = file.tensors.get(key);
  if (!e) throw new WhittleError('BAD_MODEL', `${file.name}: missing tensor ${key}`, { file: file.name, tensor: key });
  if (shape && (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))) {
    throw new WhittleError('BAD_MODEL', `${file.name}: ${key} has shape [${e.shape.join(', ')}], the config implies [${shape.join(', ')}]`, { file: file.name, tensor: key });
  }
  const count = e.shape.reduce((a, b) => a * b, 1);
  const width = e.dtype === 'F32' ? 4 : e.dtype === 'F16' || e.dtype === 'BF16' ? 2 : 0;
  if (width === 0) throw new WhittleError('UNSUPPORTED', `${file.name}: ${key} is ${e.dtype}; only F32, F16 and BF16 are supported`, { file: file.name, tensor: key });
  // readSafetensors already matched shape x dtype to the byte range; kept as the guard before allocating.
  if (e.end - e.begin !== count * width) throw new WhittleError('BAD_MODEL', `${file.name}: ${key} holds ${e.end - e.begin} bytes for ${count} ${e.dtype} values`, { file: file.name, tensor: key });
  return e;
}

/**
 * A float tensor's bytes (`byteLength` = its data range, starting at `byteOffset` of `buffer`) as
 * float32: a view when F32 and aligned, else a new array.
 */
export function decodeFloatTensor(entry: SafetensorsEntry, buffer: ArrayBuffer, byteOffset: number): Float32Array {
  const bytes = entry.end - entry.begin;
  if (entry.dtype === 'F32') {
    return byteOffset % 4 === 0 ? new Float32Array(buffer, byteOffset, bytes / 4) : new Float32Array(buffer.slice(byteOffset, byteOffset + bytes));
  }
  const bits = byteOffset % 2 === 0 ? new Uint16Array(buffer, byteOffset, bytes / 2) : new Uint16Array(buffer.slice(byteOffset, byteOffset + bytes));
  return entry.dtype === 'BF16' ? bf16ToF32(bits) : f16ToF32(bits);
}

/** A tensor as float32 (a view when possible), checked against `shape` when given. */
export function tensorAsFloat32(file: SafetensorsFile, key: string, shape?: readonly number[]): Float32Array {
  const entry = floatTensorEntry(file, key, shape);
  return decodeFloatTensor(entry, file.buffer, entry.begin);
}
