/**
 * The byte mutator for binary files (checkpoints, safetensors, TFLite, WAV, packet streams):
 * a few edits of a real file, aimed mostly at its "hot" ranges (headers, offsets, tables: where
 * a parser reads numbers it trusts) rather than at megabytes of weights no parser interprets.
 */
import { HOSTILE_U32 } from './hostile.ts';
import { chance, int, pick, type Rng } from './rand.ts';

export interface HotRange {
  start: number;
  end: number;
}

export interface MutateOptions {
  /** Where edits land 80% of the time; elsewhere uniformly. */
  hot?: readonly HotRange[];
  /** Most edits per case (default 6). */
  maxEdits?: number;
}

function offset(rng: Rng, length: number, hot: readonly HotRange[] | undefined): number {
  if (length === 0) return 0;
  if (hot && hot.length > 0 && chance(rng, 0.8)) {
    const r = pick(rng, hot);
    const end = Math.min(r.end, length);
    if (end > r.start) {
      const at = int(rng, r.start, end - 1);
      return chance(rng, 0.5) ? at & ~3 : at;
    }
  }
  return int(rng, 0, length - 1);
}

/** A 32-bit value worth writing: a hostile constant, the file length (±), or a random word. */
function word(rng: Rng, length: number): number {
  const r = rng();
  if (r < 0.5) return pick(rng, HOSTILE_U32);
  if (r < 0.75) return (length + int(rng, -16, 16)) >>> 0;
  return Math.floor(rng() * 2 ** 32) >>> 0;
}

export function mutateBytes(rng: Rng, seed: Uint8Array, options: MutateOptions = {}): Uint8Array<ArrayBuffer> {
  let out: Uint8Array<ArrayBuffer> = new Uint8Array(seed);
  const edits = int(rng, 1, options.maxEdits ?? 6);
  for (let e = 0; e < edits; e++) {
    const n = out.length;
    const at = offset(rng, n, options.hot);
    const op = int(rng, 0, 11);
    if (n === 0 && op < 9) continue;
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    switch (op) {
      case 0: // one bit
        out[at] = out[at]! ^ (1 << int(rng, 0, 7));
        break;
      case 1: // one byte
        out[at] = pick(rng, [0, 1, 0x7f, 0x80, 0xfe, 0xff, int(rng, 0, 255)]);
        break;
      case 2:
      case 3: // a 32-bit word, little-endian (every format here is LE), sometimes big-endian
        if (at + 4 <= n) view.setUint32(at, word(rng, n), op === 2);
        break;
      case 4: // a 64-bit word: safetensors' header length, TFLite int64s
        if (at + 8 <= n)
          view.setBigUint64(at, pick(rng, [0n, 1n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n, BigInt(n), BigInt(n - 8)]), true);
        break;
      case 5: // a float: NaN, infinities, huge, negative
        if (at + 4 <= n) view.setFloat32(at, pick(rng, [NaN, Infinity, -Infinity, -1, 0, 3.4e38, -3.4e38, 1e-45]), true);
        break;
      case 6: // copy a chunk over another (duplicated tables, repeated headers)
      case 7: {
        const len = Math.min(int(rng, 1, 64), n - at);
        const from = int(rng, 0, Math.max(0, n - len));
        out.copyWithin(at, from, from + len);
        break;
      }
      case 8: // a run of one value
        out.fill(pick(rng, [0, 0xff, 0x41]), at, Math.min(n, at + int(rng, 1, 256)));
        break;
      case 9: // truncate
        out = out.slice(0, chance(rng, 0.5) ? at : int(rng, 0, Math.min(n, 64)));
        break;
      case 10: {
        // grow: random or zero bytes appended
        const extra = int(rng, 1, chance(rng, 0.9) ? 64 : 4096);
        const grown = new Uint8Array(n + extra);
        grown.set(out);
        if (chance(rng, 0.5)) for (let i = n; i < grown.length; i++) grown[i] = int(rng, 0, 255);
        out = grown;
        break;
      }
      default: {
        // delete or insert a chunk (shifts every offset after it)
        const len = int(rng, 1, 32);
        if (chance(rng, 0.5)) {
          const end = Math.min(n, at + len);
          const cut = new Uint8Array(n - (end - at));
          cut.set(out.subarray(0, at));
          cut.set(out.subarray(end), at);
          out = cut;
        } else {
          const ins = new Uint8Array(n + len);
          ins.set(out.subarray(0, at));
          for (let i = 0; i < len; i++) ins[at + i] = int(rng, 0, 255);
          ins.set(out.subarray(at), at + len);
          out = ins;
        }
      }
    }
  }
  return out;
}

/** The bytes as a fresh, exactly-sized ArrayBuffer (what loaders receive from fetch or OPFS). */
export function bufferOf(bytes: Uint8Array): ArrayBuffer {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
    ? (bytes.buffer as ArrayBuffer)
    : (bytes.slice().buffer as ArrayBuffer);
}
