/**
 * The stored encoding of a sparse linear weight: the elements that differ from their *fill*
 * value, plus where they are. Works on a weight's stored elements (fp32 bit patterns, int8
 * codes, 4/8-bit MatMulNBits codes), so it composes with every stored form: a masked weight is
 * 0.0, and 0.0 quantizes to exactly the fill of each form (int8 per channel: code 0, symmetric;
 * MatMulNBits: the block's integer zero point, since round(0 / scale) + zp = zp), so encoding the
 * quantized codes loses nothing and decoding gives back the very bytes the kernel reads.
 *
 * Elements are addressed as a matrix [rows, cols] of outputs by inputs (rows = N outputs, cols
 * = the inputs, K or K padded to whole MatMulNBits blocks), in row-major order t = r * cols + c:
 *   '2:4'           index: which 2 of its 4 positions each group of 4 consecutive inputs of one
 *                   output stores (group t = r * cols/4 + g/4), one of the 6 pairs PAIRS[p];
 *                   three groups per byte as p0 + 6 p1 + 36 p2 (< 216), groups 3j..3j+2 in
 *                   byte j, digits past the last group 0; values: two per group, in group order
 *                   (rows * cols / 2). A group with fewer than two non-fill elements stores fill
 *                   ones to make two (the lowest free positions).
 *                   Why not NVIDIA's 2-bit index per kept value (4 bits a group): nothing here
 *                   runs sparse kernels (the weights are expanded to dense at compile, since
 *                   onnxruntime has no sparse MatMul on WASM or WebGPU), so the index only has
 *                   to be small: log2(6) = 2.58 bits a group is the floor, 8/3 = 2.67 is this.
 *   'unstructured'  index: one bit per element (bit t & 7 of byte t >> 3), set = stored; values:
 *                   the stored elements in order (their count = the bits set). Unused bits of
 *                   the last byte are 0.
 * At half the weights kept: 2:4 costs 0.67 bits per weight of index and unstructured 1 bit (at
 * 50% density a bitmask is the entropy), on top of half the values: of the dense elements' bytes,
 * fp32 52.1% / 53.1%, int8 58.3% / 62.5%, 4 bits 66.7% / 75% (scales and zero points stay dense).
 *
 * @example
 * const { index, values } = encodeSparse(codes, fill, rows, cols, '2:4');
 * const back = decodeSparse(index, values, fill, rows, cols, '2:4', 'layers.0.qkv'); // === codes
 */
import { WhittleError } from '../../core/errors.ts';
import type { SparsityPattern } from './sparsity-select.ts';

/** The fill value of element (r, c): what an element not in the index decodes to. */
export type FillOf = (r: number, c: number) => number;

/** Bytes of the index of a [rows, cols] matrix. */
export function sparseIndexBytes(rows: number, cols: number, pattern: SparsityPattern): number {
  return pattern === '2:4' ? Math.ceil((rows * cols) / 4 / 3) : Math.ceil((rows * cols) / 8);
}

/** The 6 ways to keep 2 of 4 positions, in increasing order: a 2:4 index digit is the pair's place here. */
export const PAIRS: readonly (readonly [number, number])[] = [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]];
const pairOf = (i0: number, i1: number): number => PAIRS.findIndex(([a, b]) => a === i0 && b === i1);
const POW6 = [1, 6, 36] as const;

/** Stored elements of a '2:4' matrix (for 'unstructured' it is the index's popcount). */
export const twoFourValues = (rows: number, cols: number): number => (rows * cols) / 2;

/**
 * codes [rows * cols] (row-major, one element per entry) -> index and stored values. Throws
 * INVALID_ARGUMENT when '2:4' is asked of a matrix with a group of more than two non-fill
 * elements, or cols not a multiple of 4.
 */
export function encodeSparse(codes: Uint32Array, fill: FillOf, rows: number, cols: number, pattern: SparsityPattern): { index: Uint8Array; values: Uint32Array } {
  if (codes.length !== rows * cols) throw new WhittleError('INVALID_ARGUMENT', `encodeSparse: ${codes.length} elements for [${rows}, ${cols}]`);
  const index = new Uint8Array(sparseIndexBytes(rows, cols, pattern));
  if (pattern === '2:4') {
    if (cols % 4 !== 0) throw new WhittleError('INVALID_ARGUMENT', `2:4 needs inputs in groups of 4; this matrix has ${cols}`);
    const values = new Uint32Array(twoFourValues(rows, cols));
    let v = 0;
    let t = 0;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < cols; g += 4, t++) {
        const base = r * cols + g;
        let i0 = -1;
        let i1 = -1;
        for (let i = 0; i < 4; i++) {
          if (codes[base + i] === fill(r, g + i)) continue;
          if (i0 < 0) i0 = i;
          else if (i1 < 0) i1 = i;
          else throw new WhittleError('INVALID_ARGUMENT', `not 2:4 sparse: output ${r}, inputs ${g}..${g + 3} have more than two non-zero weights`, { row: r, col: g });
        }
        // Fewer than two stored: fill positions make up the pair (still in increasing order).
        if (i0 < 0) i0 = 0;
        if (i1 < 0) i1 = i0 === 3 ? 3 : i0 + 1;
        if (i0 === 3) i0 = 2;
        index[Math.floor(t / 3)]! += pairOf(i0, i1) * POW6[t % 3]!;
        values[v++] = codes[base + i0]!;
        values[v++] = codes[base + i1]!;
      }
    }
    return { index, values };
  }
  const kept: number[] = [];
  for (let t = 0; t < rows * cols; t++) {
    const r = Math.floor(t / cols);
    if (codes[t] === fill(r, t - r * cols)) continue;
    index[t >> 3]! |= 1 << (t & 7);
    kept.push(codes[t]!);
  }
  return { index, values: Uint32Array.from(kept) };
}

/** Set bits of an unstructured index (its stored values), counting only the matrix's elements. */
export function popcount(index: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < index.length; i++) {
    let b = index[i]!;
    while (b) {
      b &= b - 1;
      n++;
    }
  }
  return n;
}

/**
 * index + values -> codes [rows * cols]. The inputs come from a file: a malformed index (a 2:4
 * byte >= 216, digits or bits past the matrix, a count that is not the values') is BAD_MODEL
 * naming `what`, found before the output is allocated.
 */
export function decodeSparse(index: Uint8Array, values: ArrayLike<number>, fill: FillOf, rows: number, cols: number, pattern: SparsityPattern, what: string): Uint32Array {
  const bad = (msg: string) => new WhittleError('BAD_MODEL', `${what}: ${msg}`, { tensor: what });
  if (index.length !== sparseIndexBytes(rows, cols, pattern)) throw bad(`sparse index has ${index.length} bytes, [${rows}, ${cols}] needs ${sparseIndexBytes(rows, cols, pattern)}`);
  if (pattern === '2:4') {
    if (cols % 4 !== 0) throw bad(`2:4 needs inputs in groups of 4, not ${cols}`);
    const groups = (rows * cols) / 4;
    if (values.length !== groups * 2) throw bad(`2:4 stores ${groups * 2} values, the file has ${values.length}`);
    for (let j = 0; j < index.length; j++) if (index[j]! >= 216) throw bad(`2:4 index byte ${j} is ${index[j]}, not three pairs (< 216)`);
    const last = groups % 3;
    if (last !== 0 && index[index.length - 1]! >= POW6[last]!) throw bad('2:4 index has pairs past the last group');
    const out = new Uint32Array(rows * cols);
    let t = 0;
    for (let r = 0; r < rows; r++) {
      for (let g = 0; g < cols; g += 4, t++) {
        const [i0, i1] = PAIRS[Math.floor(index[Math.floor(t / 3)]! / POW6[t % 3]!) % 6]!;
        for (let i = 0; i < 4; i++) out[r * cols + g + i] = fill(r, g + i);
        out[r * cols + g + i0] = values[2 * t]!;
        out[r * cols + g + i1] = values[2 * t + 1]!;
      }
    }
    return out;
  }
  const total = rows * cols;
  if (total % 8 !== 0 && index[index.length - 1]! >> (total % 8) !== 0) throw bad('sparse bitmask has bits past the matrix');
  const count = popcount(index);
  if (count !== values.length) throw bad(`sparse bitmask marks ${count} values, the file has ${values.length}`);
  const out = new Uint32Array(total);
  let v = 0;
  for (let t = 0; t < total; t++) {
    const r = Math.floor(t / cols);
    out[t] = (index[t >> 3]! >> (t & 7)) & 1 ? values[v++]! : fill(r, t - r * cols);
  }
  return out;
}
