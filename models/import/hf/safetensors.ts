/**
 * safetensors reader: u64 little-endian header length, a JSON header
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }`, then the data.
 * F32 tensors are zero-copy views when 4-byte aligned; F16/BF16 are widened to float32 (the
 * graphs run float32), everything else is UNSUPPORTED. Offsets are checked, so a truncated file
 * is a BAD_MODEL error rather than an out-of-range view.
 */
import { WhittleError } from '../../../core/errors.ts';

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

export function readSafetensors(buffer: ArrayBuffer, name = 'model.safetensors'): SafetensorsFile {
  if (buffer.byteLength < 8) throw new WhittleError('BAD_MODEL', `${name}: too short for a safetensors header`, { file: name });
  const view = new DataView(buffer);
  const headerLen = Number(view.getBigUint64(0, true));
  if (8 + headerLen > buffer.byteLength) throw new WhittleError('BAD_MODEL', `${name}: header of ${headerLen} bytes runs past the end of the file`, { file: name });
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, headerLen))) as Record<string, unknown>;
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `${name}: header is not JSON`, { file: name }, { cause: err });
  }
  const dataStart = 8 + headerLen;
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [key, value] of Object.entries(header)) {
    if (key === '__metadata__') continue;
    const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const offsets = v.data_offsets as [number, number] | undefined;
    if (typeof v.dtype !== 'string' || !Array.isArray(v.shape) || !Array.isArray(offsets) || offsets.length !== 2) {
      throw new WhittleError('BAD_MODEL', `${name}: malformed header entry for ${key}`, { file: name, tensor: key });
    }
    const entry = { dtype: v.dtype, shape: v.shape as number[], begin: dataStart + offsets[0], end: dataStart + offsets[1] };
    if (entry.end > buffer.byteLength || entry.begin > entry.end) {
      throw new WhittleError('BAD_MODEL', `${name}: truncated: ${key} ends at byte ${entry.end}, file has ${buffer.byteLength}`, { file: name, tensor: key });
    }
    tensors.set(key, entry);
  }
  return { name, tensors, buffer };
}

/** bfloat16 is the top half of a float32. */
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

/** A tensor as float32 (a view when possible), checked against `shape` when given. */
export function tensorAsFloat32(file: SafetensorsFile, key: string, shape?: readonly number[]): Float32Array {
  const e = file.tensors.get(key);
  if (!e) throw new WhittleError('BAD_MODEL', `${file.name}: missing tensor ${key}`, { file: file.name, tensor: key });
  if (shape && (e.shape.length !== shape.length || e.shape.some((d, i) => d !== shape[i]))) {
    throw new WhittleError('BAD_MODEL', `${file.name}: ${key} has shape [${e.shape.join(', ')}], the config implies [${shape.join(', ')}]`, { file: file.name, tensor: key });
  }
  const count = e.shape.reduce((a, b) => a * b, 1);
  const width = e.dtype === 'F32' ? 4 : e.dtype === 'F16' || e.dtype === 'BF16' ? 2 : 0;
  if (width === 0) throw new WhittleError('UNSUPPORTED', `${file.name}: ${key} is ${e.dtype}; only F32, F16 and BF16 are supported`, { file: file.name, tensor: key });
  if (e.end - e.begin !== count * width) throw new WhittleError('BAD_MODEL', `${file.name}: ${key} holds ${e.end - e.begin} bytes for ${count} ${e.dtype} values`, { file: file.name, tensor: key });
  if (e.dtype === 'F32') {
    return e.begin % 4 === 0 ? new Float32Array(file.buffer, e.begin, count) : new Float32Array(file.buffer.slice(e.begin, e.end));
  }
  const bits = e.begin % 2 === 0 ? new Uint16Array(file.buffer, e.begin, count) : new Uint16Array(file.buffer.slice(e.begin, e.end));
  return e.dtype === 'BF16' ? bf16ToF32(bits) : f16ToF32(bits);
}
