/**
 * (Experiment for bench/sparse-coding.ts, not a product format: see bench/PRUNING.md.)
 * An adaptive binary range coder (the LZMA kind): each binary decision is coded with an 11-bit
 * probability that moves 1/32 of the way towards what was seen, so a model needs no table in the
 * file and a decision the context predicts well costs a fraction of a bit. All arithmetic is on
 * integers below 2^40 held in doubles, so encoder and decoder agree bit for bit on every engine.
 *
 * Probabilities live in a caller's Uint16Array (one slot per context); both sides must start
 * from `newProbs` and ask for the same slots in the same order.
 *
 * The decoder reads from a file: it never reads past the stream's end (a truncated stream is
 * BAD_MODEL naming `what`), and whatever the bytes are it only returns 0 or 1, so a hostile
 * stream decodes to some values (checked by the caller), never to an out-of-range state.
 *
 * @example
 * const enc = new RangeEncoder(); const p = newProbs(1);
 * enc.encodeBit(p, 0, 1); const bytes = enc.finish();
 * new RangeDecoder(bytes, 'x').decodeBit(newProbs(1), 0); // 1
 */
import { WhittleError } from '../../core/errors.ts';

const PROB_BITS = 11;
const PROB_ONE = 1 << PROB_BITS;
const MOVE_BITS = 5;
const TOP = 2 ** 24;
const TWO32 = 2 ** 32;

/** `n` context slots, each at probability 1/2. */
export const newProbs = (n: number): Uint16Array => new Uint16Array(n).fill(PROB_ONE >> 1);

export class RangeEncoder {
  private low = 0; // < 2^33 between steps (a carry sits in bit 32)
  private range = TWO32 - 1;
  private cache = 0;
  private cacheSize = 1;
  private out: number[] = [];

  /** Codes `bit` (0 or 1) with probability slot `i` of `probs`, then adapts the slot. */
  encodeBit(probs: Uint16Array, i: number, bit: number): void {
    const p = probs[i]!;
    const bound = Math.floor(this.range / PROB_ONE) * p;
    if (bit === 0) {
      this.range = bound;
      probs[i] = p + ((PROB_ONE - p) >> MOVE_BITS);
    } else {
      this.low += bound;
      this.range -= bound;
      probs[i] = p - (p >> MOVE_BITS);
    }
    while (this.range < TOP) {
      this.range *= 256;
      this.shiftLow();
    }
  }

  /** The low byte out, propagating a carry into the bytes held back (0xFF runs wait in cacheSize). */
  private shiftLow(): void {
    const carry = this.low >= TWO32 ? 1 : 0;
    const low32 = this.low % TWO32;
    if (low32 < 0xff000000 || carry) {
      let temp = this.cache;
      do {
        this.out.push((temp + carry) & 0xff);
        temp = 0xff;
      } while (--this.cacheSize !== 0);
      this.cache = Math.floor(low32 / TOP);
    }
    this.cacheSize++;
    this.low = (low32 % TOP) * 256;
  }

  /** Flushes and returns the stream (its first byte is always 0: the decoder reads 5 bytes to start). */
  finish(): Uint8Array {
    for (let i = 0; i < 5; i++) this.shiftLow();
    return Uint8Array.from(this.out);
  }
}

export class RangeDecoder {
  private code = 0;
  private range = TWO32 - 1;
  private pos = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    for (let i = 0; i < 5; i++) this.code = (this.code % TOP) * 256 + this.next();
  }

  private next(): number {
    if (this.pos >= this.bytes.length) throw new WhittleError('BAD_MODEL', `${this.what}: the coded stream ends early (${this.bytes.length} bytes)`, { tensor: this.what });
    return this.bytes[this.pos++]!;
  }

  /** Bytes read so far. */
  get consumed(): number {
    return this.pos;
  }

  decodeBit(probs: Uint16Array, i: number): number {
    const p = probs[i]!;
    const bound = Math.floor(this.range / PROB_ONE) * p;
    let bit: number;
    if (this.code < bound) {
      this.range = bound;
      probs[i] = p + ((PROB_ONE - p) >> MOVE_BITS);
      bit = 0;
    } else {
      this.code -= bound;
      this.range -= bound;
      probs[i] = p - (p >> MOVE_BITS);
      bit = 1;
    }
    while (this.range < TOP) {
      this.range *= 256;
      // A hostile stream can leave code >= range; keeping it mod 2^32 keeps every later step in range.
      this.code = (this.code % TOP) * 256 + this.next();
    }
    return bit;
  }
}
