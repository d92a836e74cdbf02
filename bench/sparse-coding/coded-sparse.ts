/**
 * (Experiment for bench/sparse-coding.ts, not a product format: the shipped sparse variant is
 * models/compress/sparse-encoding.ts; why this was not shipped: bench/PRUNING.md.)
 *
 * A coded sparse encoding of a quantized weight: which elements differ from
 * their fill and their codes, in one adaptive range-coded stream (range-coder.ts) instead of an
 * index plus raw codes (sparse-encoding.ts, variant format 2). Lossless: decoding gives back the very
 * codes that were encoded.
 *
 * Why: at 50% sparsity the raw form has a floor. A bitmask costs 1 bit a weight and a kept int8
 * code 8 bits, so q8 linears cost 62.5% of dense and the whole q8 variant (embedding and head
 * dense) 65-68%; a 4-bit code plus its block's dense scale, 80-84%. The codes are not uniform:
 * trained weights are bell-shaped around the fill, each output row has its own spread (a
 * per-channel int8 row spans -127..127 but most of it sits near 0), and Wanda keeps the inputs
 * with large activation norms in most rows. The model below uses exactly that:
 *
 * Elements are a matrix [rows, cols] (outputs x inputs, row-major, as sparse-encoding.ts), each
 * an integer code in [min, max] with a fill (the code of 0.0); d = code - fill.
 *   'unstructured'  per element: "d != 0" with one adaptive slot per input column (the column's
 *                   keep rate); if so, d as a non-zero value (below).
 *   '2:4'           per group of 4: its pair (one of the 6 of sparse-encoding.ts' PAIRS) as 3
 *                   binary decisions of a tree, slots per group column (the inputs' keep rates);
 *                   then the two stored elements' d, each "d != 0" (a group with fewer than two
 *                   non-fill elements stores fill ones) then the value.
 *   a non-zero d    sign (one slot), then L = floor(log2 |d|) in unary ("L > j" for j = 0, 1, ..),
 *                   slots per (magnitude class of the row's previous value, j), then the L bits
 *                   of |d| below its top bit, top first, slots per (L, bit): the previous value's
 *                   class follows each row's spread without storing it.
 *
 * Hostile streams: decoding allocates the [rows, cols] output only after checking that the
 * stream has at least one byte per MAX_ELEMENTS_PER_BYTE elements (the writer pads a stream
 * that codes smaller: only a near-empty matrix does), so a header cannot make the reader
 * allocate more than a fixed multiple of the file's bytes; a decoded code outside [min, max],
 * a pair digit past the 6 pairs or a stream that ends early is BAD_MODEL naming `what`.
 *
 * @example
 * const stream = encodeSparseStream(codes, () => 0, rows, cols, 'unstructured', { min: -128, max: 127 });
 * decodeSparseStream(stream, () => 0, rows, cols, 'unstructured', { min: -128, max: 127 }, 'layers.0.qkv'); // = codes
 */
import { WhittleError } from '../../core/errors.ts';
import { blockCount, zeroPointBytes, type BlockwiseWeight, type NBits } from '../../models/compress/blockwise.ts';
import type { LinearWeight } from '../../models/compress/linear.ts';
import { PAIRS, type FillOf } from '../../models/compress/sparse-encoding.ts';
import { packCodes, unpackCodes, zeroPointOf } from '../../models/compress/sparse-linear.ts';
import type { SparsityPattern } from '../../models/compress/sparsity-select.ts';
import { newProbs, RangeDecoder, RangeEncoder } from './range-coder.ts';

/** Decoded elements per stream byte at most: a stream under rows * cols / 16 bytes is refused (and padded when written). */
export const MAX_ELEMENTS_PER_BYTE = 16;
/** Smallest stream a [rows, cols] matrix may have. */
export const minStreamBytes = (rows: number, cols: number): number => Math.ceil((rows * cols) / MAX_ELEMENTS_PER_BYTE);

export interface CodeRange {
  min: number;
  max: number;
}

const MAGNITUDE_BITS = 8; // |d| - 1 <= 255 for every form (int8: 127; 8-bit blocks: 254; 4-bit: 14)
const CLASSES = 8; // the row's recent magnitude (log2 of a running mean), 0 at a row's start
const PAIR_OF = new Map(PAIRS.map(([a, b], p) => [a * 4 + b, p]));

/** The adaptive slots both sides walk through in the same order. */
class Model {
  readonly nonZero: Uint16Array; // per column (unstructured) or per class (2:4 values)
  readonly pair: Uint16Array; // per group column x 8 tree nodes
  readonly sign = newProbs(1);
  readonly magnitude = newProbs(CLASSES << MAGNITUDE_BITS); // per class, a bit tree over |d| - 1
  /** Running mean of the row's |d| x 16 (integers: both sides compute it alike). */
  mean = 0;
  constructor(cols: number, pattern: SparsityPattern) {
    this.nonZero = newProbs(pattern === '2:4' ? CLASSES : cols);
    this.pair = newProbs(pattern === '2:4' ? (cols / 4) * 8 : 0);
  }
  get klass(): number {
    return this.mean === 0 ? 0 : Math.min(CLASSES - 1, 1 + (31 - Math.clz32(this.mean >> 4 || 1)));
  }
  /** The running mean moves a quarter of the way to |d|. */
  seen(a: number): void {
    this.mean = this.mean === 0 ? a << 4 : this.mean + (((a << 4) - this.mean) >> 2);
  }
}

function encodeNonZero(enc: RangeEncoder, m: Model, d: number, bits: number): void {
  enc.encodeBit(m.sign, 0, d < 0 ? 1 : 0);
  const a = Math.abs(d);
  const base = m.klass << MAGNITUDE_BITS;
  let node = 1;
  for (let b = bits - 1; b >= 0; b--) {
    const bit = ((a - 1) >> b) & 1;
    enc.encodeBit(m.magnitude, base + node, bit);
    node = node * 2 + bit;
  }
  m.seen(a);
}

function decodeNonZero(dec: RangeDecoder, m: Model, bits: number): number {
  const negative = dec.decodeBit(m.sign, 0);
  const base = m.klass << MAGNITUDE_BITS;
  let node = 1;
  for (let b = 0; b < bits; b++) node = node * 2 + dec.decodeBit(m.magnitude, base + node);
  const a = node - (1 << bits) + 1;
  m.seen(a);
  return negative ? -a : a;
}

/** Bits of the tree over |d| - 1 for a code range with these fills: enough for the farthest code from any fill. */
const magnitudeBits = (range: CodeRange): number => Math.max(1, 32 - Math.clz32(range.max - range.min));

/**
 * codes [rows * cols] (row-major, integers in [range.min, range.max]) -> the coded stream.
 * Throws INVALID_ARGUMENT when '2:4' is asked of a matrix with a group of more than two
 * non-fill elements, cols not a multiple of 4, or a code outside the range.
 */
export function encodeSparseStream(codes: ArrayLike<number>, fill: FillOf, rows: number, cols: number, pattern: SparsityPattern, range: CodeRange): Uint8Array {
  if (codes.length !== rows * cols) throw new WhittleError('INVALID_ARGUMENT', `encodeSparseStream: ${codes.length} elements for [${rows}, ${cols}]`);
  if (pattern === '2:4' && cols % 4 !== 0) throw new WhittleError('INVALID_ARGUMENT', `2:4 needs inputs in groups of 4; this matrix has ${cols}`);
  const enc = new RangeEncoder();
  const bits = magnitudeBits(range);
  const m = new Model(cols, pattern);
  const delta = (r: number, c: number): number => {
    const v = codes[r * cols + c]!;
    if (!(v >= range.min && v <= range.max)) throw new WhittleError('INVALID_ARGUMENT', `encodeSparseStream: code ${v} outside [${range.min}, ${range.max}]`);
    return v - fill(r, c);
  };
  for (let r = 0; r < rows; r++) {
    m.mean = 0;
    if (pattern === 'unstructured') {
      for (let c = 0; c < cols; c++) {
        const d = delta(r, c);
        enc.encodeBit(m.nonZero, c, d !== 0 ? 1 : 0);
        if (d !== 0) encodeNonZero(enc, m, d, bits);
      }
      continue;
    }
    for (let g = 0; g < cols; g += 4) {
      const ds = [delta(r, g), delta(r, g + 1), delta(r, g + 2), delta(r, g + 3)];
      const stored = [0, 1, 2, 3].filter((i) => ds[i] !== 0);
      if (stored.length > 2) throw new WhittleError('INVALID_ARGUMENT', `not 2:4 sparse: output ${r}, inputs ${g}..${g + 3} have more than two non-zero weights`, { row: r, col: g });
      // Fewer than two stored: the lowest free positions make up the pair (they decode to fill).
      for (let i = 0; stored.length < 2; i++) if (!stored.includes(i)) stored.push(i);
      stored.sort((a, b) => a - b);
      const p = PAIR_OF.get(stored[0]! * 4 + stored[1]!)!;
      const slots = (g / 4) * 8;
      // The pair index as a 3-level tree: node 1, then 2 + bit, then 4 + two bits.
      let node = 1;
      for (let b = 2; b >= 0; b--) {
        const bit = (p >> b) & 1;
        enc.encodeBit(m.pair, slots + node, bit);
        node = node * 2 + bit;
      }
      for (const i of stored) {
        const d = ds[i]!;
        enc.encodeBit(m.nonZero, m.klass, d !== 0 ? 1 : 0);
        if (d !== 0) encodeNonZero(enc, m, d, bits);
      }
    }
  }
  const stream = enc.finish();
  const min = minStreamBytes(rows, cols);
  if (stream.length >= min) return stream;
  // The decoder ignores bytes past what it reads: zeros bring a tiny stream up to the floor.
  const padded = new Uint8Array(min);
  padded.set(stream);
  return padded;
}

/** stream -> codes [rows * cols]. Malformed streams are BAD_MODEL naming `what` (see the file's comment). */
export function decodeSparseStream(stream: Uint8Array, fill: FillOf, rows: number, cols: number, pattern: SparsityPattern, range: CodeRange, what: string): Int32Array {
  const bad = (msg: string) => new WhittleError('BAD_MODEL', `${what}: ${msg}`, { tensor: what });
  if (stream.length < minStreamBytes(rows, cols)) throw bad(`coded stream of ${stream.length} bytes for [${rows}, ${cols}]: at least ${minStreamBytes(rows, cols)} expected`);
  if (pattern === '2:4' && cols % 4 !== 0) throw bad(`2:4 needs inputs in groups of 4, not ${cols}`);
  const dec = new RangeDecoder(stream, what);
  const bits = magnitudeBits(range);
  const m = new Model(cols, pattern);
  const out = new Int32Array(rows * cols);
  const put = (r: number, c: number, d: number) => {
    const v = fill(r, c) + d;
    if (v < range.min || v > range.max) throw bad(`decoded code ${v} at [${r}, ${c}] is outside [${range.min}, ${range.max}]`);
    out[r * cols + c] = v;
  };
  for (let r = 0; r < rows; r++) {
    m.mean = 0;
    if (pattern === 'unstructured') {
      for (let c = 0; c < cols; c++) put(r, c, dec.decodeBit(m.nonZero, c) ? decodeNonZero(dec, m, bits) : 0);
      continue;
    }
    for (let g = 0; g < cols; g += 4) {
      const slots = (g / 4) * 8;
      let node = 1;
      for (let b = 0; b < 3; b++) node = node * 2 + dec.decodeBit(m.pair, slots + node);
      const p = node - 8;
      if (p >= PAIRS.length) throw bad(`2:4 pair ${p} at output ${r}, inputs ${g}..${g + 3} is not one of the ${PAIRS.length}`);
      const [i0, i1] = PAIRS[p]!;
      for (let i = 0; i < 4; i++) if (i !== i0 && i !== i1) put(r, g + i, 0);
      for (const i of [i0, i1]) put(r, g + i, dec.decodeBit(m.nonZero, m.klass) ? decodeNonZero(dec, m, bits) : 0);
    }
  }
  return out;
}

/** A quantized linear's elements as the coded stream sees them: rows = outputs, signed int8 codes or unpacked block codes. */
function quantizedElements(w: Exclude<LinearWeight, Float32Array>, K: number, N: number): { codes: Int32Array; fill: FillOf; cols: number; range: CodeRange } {
  if (w.kind === 'int8') {
    const b = w.weight.b;
    const codes = new Int32Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) codes[n * K + k] = b[k * N + n]!;
    return { codes, fill: () => 0, cols: K, range: INT8_RANGE };
  }
  const q = w.weight;
  const nBlocks = blockCount(K, q.blockSize);
  const zp = zeroPointOf(q, zeroPointBytes(nBlocks, q.bits));
  const cols = nBlocks * q.blockSize;
  return { codes: Int32Array.from(unpackCodes(q.b, N * cols, q.bits)), fill: (n, k) => zp(n, Math.floor(k / q.blockSize)), cols, range: { min: 0, max: (1 << q.bits) - 1 } };
}
const INT8_RANGE: CodeRange = { min: -128, max: 127 };

/**
 * A quantized linear (int8 per channel or MatMulNBits) -> its coded sparse stream
 * (above); scales and zero points stay dense beside it. Throws
 * INVALID_ARGUMENT when '2:4' does not hold.
 */
export function encodeSparseLinearStream(w: Exclude<LinearWeight, Float32Array>, K: number, N: number, pattern: SparsityPattern): Uint8Array {
  const { codes, fill, cols, range } = quantizedElements(w, K, N);
  return encodeSparseStream(codes, fill, N, cols, pattern, range);
}

/** The coded stream + the form's dense scales / zero points (`like`) -> the stored linear. Malformed data is BAD_MODEL naming `what`. */
export function decodeSparseLinearStream(
  stream: Uint8Array,
  like: { kind: 'int8'; scales: Float32Array } | { kind: 'nbits'; bits: NBits; blockSize: BlockwiseWeight['blockSize']; scales: Float32Array; zeroPoints: Uint8Array; accuracyLevel: 1 | 4 },
  K: number,
  N: number,
  pattern: SparsityPattern,
  what: string,
): LinearWeight {
  if (like.kind === 'int8') {
    const codes = decodeSparseStream(stream, () => 0, N, K, pattern, INT8_RANGE, what);
    const b = new Int8Array(K * N);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) b[k * N + n] = codes[n * K + k]!;
    return { kind: 'int8', weight: { K, N, b, scales: like.scales } };
  }
  const { bits, blockSize } = like;
  const nBlocks = blockCount(K, blockSize);
  const cols = nBlocks * blockSize;
  const zp = zeroPointOf(like, zeroPointBytes(nBlocks, bits));
  const codes = decodeSparseStream(stream, (n, k) => zp(n, Math.floor(k / blockSize)), N, cols, pattern, { min: 0, max: (1 << bits) - 1 }, what);
  return { kind: 'nbits', accuracyLevel: like.accuracyLevel, weight: { K, N, bits, blockSize, b: packCodes(Uint32Array.from(codes), bits), scales: like.scales, zeroPoints: like.zeroPoints } };
}
