/**
 * A minimal, bounds-checked FlatBuffers table reader (just what the TFLite schema needs).
 *
 * Why hand-written: the TFLite schema is large but we read ~15 tables; a generated reader
 * would pull in thousands of lines. Every read is checked against the buffer end so a
 * truncated or foreign file fails with BAD_MODEL instead of a RangeError or garbage.
 */
import { WhittleError } from '../../../core/errors.ts';

export class FbError extends Error {}

export class Fb {
  readonly view: DataView;
  /**
   * Vector elements and string bytes left to materialize. Offsets may point anywhere, so a hostile file can make
   * one vector's elements all name the same large table (or vector) and multiply its size with
   * every level: a few KB that reads as billions of elements. A real file stores each element
   * once, at 4 bytes or more, so reading more elements than the file has bytes means sharing no
   * writer produces; the budget turns it into a FbError long before memory runs out.
   */
  private budget: number;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.budget = bytes.byteLength;
  }
  /** Charges `n` elements against the budget (see `budget`). */
  charge(n: number): void {
    this.budget -= n;
    if (this.budget < 0)
      throw new FbError(`flatbuffer reads more elements than its ${this.bytes.byteLength} bytes can hold (shared or cyclic offsets)`);
  }
  check(pos: number, size: number): void {
    if (pos < 0 || pos + size > this.bytes.byteLength || !Number.isFinite(pos)) {
      throw new FbError(`flatbuffer read out of bounds at ${pos} (+${size}) of ${this.bytes.byteLength}`);
    }
  }
  u8(p: number): number {
    this.check(p, 1);
    return this.view.getUint8(p);
  }
  i8(p: number): number {
    this.check(p, 1);
    return this.view.getInt8(p);
  }
  u16(p: number): number {
    this.check(p, 2);
    return this.view.getUint16(p, true);
  }
  i32(p: number): number {
    this.check(p, 4);
    return this.view.getInt32(p, true);
  }
  u32(p: number): number {
    this.check(p, 4);
    return this.view.getUint32(p, true);
  }
  f32(p: number): number {
    this.check(p, 4);
    return this.view.getFloat32(p, true);
  }
  i64(p: number): number {
    this.check(p, 8);
    return Number(this.view.getBigInt64(p, true));
  }
  /** The root table position. */
  root(): Table {
    return new Table(this, this.u32(0));
  }
}

/** One table: fields are addressed by their schema order (0-based). */
export class Table {
  private readonly vt: number;
  private readonly vtLen: number;
  constructor(
    readonly fb: Fb,
    readonly pos: number,
  ) {
    this.vt = pos - fb.i32(pos);
    this.vtLen = fb.u16(this.vt);
  }
  /** Absolute position of field `i`, or 0 when absent. */
  private field(i: number): number {
    const o = 4 + 2 * i;
    if (o >= this.vtLen) return 0;
    const rel = this.fb.u16(this.vt + o);
    return rel === 0 ? 0 : this.pos + rel;
  }
  has(i: number): boolean {
    return this.field(i) !== 0;
  }
  u8(i: number, def = 0): number {
    const p = this.field(i);
    return p ? this.fb.u8(p) : def;
  }
  i8(i: number, def = 0): number {
    const p = this.field(i);
    return p ? this.fb.i8(p) : def;
  }
  i32(i: number, def = 0): number {
    const p = this.field(i);
    return p ? this.fb.i32(p) : def;
  }
  u32(i: number, def = 0): number {
    const p = this.field(i);
    return p ? this.fb.u32(p) : def;
  }
  f32(i: number, def = 0): number {
    const p = this.field(i);
    return p ? this.fb.f32(p) : def;
  }
  bool(i: number, def = false): boolean {
    const p = this.field(i);
    return p ? this.fb.u8(p) !== 0 : def;
  }
  private indirect(i: number): number {
    const p = this.field(i);
    return p ? p + this.fb.u32(p) : 0;
  }
  table(i: number): Table | null {
    const p = this.indirect(i);
    return p ? new Table(this.fb, p) : null;
  }
  string(i: number): string | null {
    const p = this.indirect(i);
    if (!p) return null;
    const len = this.fb.u32(p);
    this.fb.check(p + 4, len);
    this.fb.charge(len);
    return new TextDecoder().decode(this.fb.bytes.subarray(p + 4, p + 4 + len));
  }
  /** [start, length] of a vector field (start = first element). */
  private vec(i: number): [number, number] {
    const p = this.indirect(i);
    if (!p) return [0, 0];
    return [p + 4, this.fb.u32(p)];
  }
  tables(i: number): Table[] {
    const [s, n] = this.vec(i);
    this.fb.check(s, n * 4);
    this.fb.charge(n);
    return Array.from({ length: n }, (_, k) => new Table(this.fb, s + 4 * k + this.fb.u32(s + 4 * k)));
  }
  i32s(i: number): number[] {
    const [s, n] = this.vec(i);
    this.fb.check(s, n * 4);
    this.fb.charge(n);
    return Array.from({ length: n }, (_, k) => this.fb.i32(s + 4 * k));
  }
  f32s(i: number): number[] {
    const [s, n] = this.vec(i);
    this.fb.check(s, n * 4);
    this.fb.charge(n);
    return Array.from({ length: n }, (_, k) => this.fb.f32(s + 4 * k));
  }
  i64s(i: number): number[] {
    const [s, n] = this.vec(i);
    this.fb.check(s, n * 8);
    this.fb.charge(n);
    return Array.from({ length: n }, (_, k) => this.fb.i64(s + 8 * k));
  }
  /** A byte vector as a view (no copy). */
  bytes(i: number): Uint8Array {
    const [s, n] = this.vec(i);
    if (n === 0) return new Uint8Array(0);
    this.fb.check(s, n);
    return this.fb.bytes.subarray(s, s + n);
  }
}

export function badModel(model: string, why: string, cause?: unknown): WhittleError {
  return new WhittleError('BAD_MODEL', `${model}: not a readable TFLite model (${why})`, { model }, { cause });
}
