/**
 * Bit packing of RVQ codes. The payload is Lyra's own format: 4 bits per quantizer, the first
 * quantizer's code in the most significant bits, padded to whole bytes (no header: its length
 * implies the rate). A Whittle packet adds a 3-byte header so a stream is self-describing:
 *
 *   byte 0      quantizer count n (1..46)
 *   bytes 1-2   frame index mod 65536, big-endian (detects loss and reordering)
 *   bytes 3..   payload, ceil(4n / 8) bytes
 */
import { WhittleError } from '../../core/errors.ts';
import { BITS_PER_QUANTIZER, MAX_QUANTIZERS, PACKET_HEADER_BYTES, checkQuantizers } from '../../models/codec/bitrates.ts';

export const HEADER_BYTES = PACKET_HEADER_BYTES;

export interface CodecPacket {
  numQuantizers: number;
  frameIndex: number;
  /** Int32Array(46): codes for the first numQuantizers stages, -1 beyond (what decode expects). */
  codes: Int32Array;
}

export function payloadBytes(numQuantizers: number): number {
  return Math.ceil((numQuantizers * BITS_PER_QUANTIZER) / 8);
}

/** Lyra payload: the first `numQuantizers` codes, 4 bits each, MSB first. */
export function packCodes(codes: ArrayLike<number>, numQuantizers: number): Uint8Array {
  checkQuantizers(numQuantizers);
  const out = new Uint8Array(payloadBytes(numQuantizers));
  for (let s = 0; s < numQuantizers; s++) {
    const c = codes[s];
    if (c === undefined || !Number.isInteger(c) || c < 0 || c > 15) {
      throw new WhittleError('INVALID_ARGUMENT', `code ${c} at stage ${s} does not fit in 4 bits`, { stage: s });
    }
    out[s >> 1]! |= s & 1 ? c : c << 4;
  }
  return out;
}

/** Inverse of packCodes: Int32Array(46) with -1 beyond numQuantizers. */
export function unpackCodes(payload: Uint8Array, numQuantizers: number): Int32Array {
  checkQuantizers(numQuantizers);
  if (payload.length < payloadBytes(numQuantizers)) {
    throw new WhittleError('INVALID_ARGUMENT', `payload of ${payload.length} bytes is too short for ${numQuantizers} quantizers`, {
      bytes: payload.length,
    });
  }
  const codes = new Int32Array(MAX_QUANTIZERS).fill(-1);
  for (let s = 0; s < numQuantizers; s++) codes[s] = s & 1 ? payload[s >> 1]! & 15 : payload[s >> 1]! >> 4;
  return codes;
}

/**
 * One frame as a Whittle packet.
 * @example const bytes = packPacket(codes, 30, frameIndex); // 3 + 15 bytes at 6 kbps
 */
export function packPacket(codes: ArrayLike<number>, numQuantizers: number, frameIndex: number): Uint8Array {
  const payload = packCodes(codes, numQuantizers);
  const out = new Uint8Array(HEADER_BYTES + payload.length);
  out[0] = numQuantizers;
  out[1] = (frameIndex >>> 8) & 0xff;
  out[2] = frameIndex & 0xff;
  out.set(payload, HEADER_BYTES);
  return out;
}

/** Parses one packet from the start of `bytes`; `size` is how many bytes it used. */
export function unpackPacket(bytes: Uint8Array): CodecPacket & { size: number } {
  if (bytes.length < HEADER_BYTES)
    throw new WhittleError('INVALID_ARGUMENT', `packet of ${bytes.length} bytes has no header`, { bytes: bytes.length });
  const numQuantizers = bytes[0]!;
  if (numQuantizers < 1 || numQuantizers > MAX_QUANTIZERS) {
    throw new WhittleError('INVALID_ARGUMENT', `packet header says ${numQuantizers} quantizers (1..${MAX_QUANTIZERS})`, { numQuantizers });
  }
  const size = HEADER_BYTES + payloadBytes(numQuantizers);
  if (bytes.length < size)
    throw new WhittleError('INVALID_ARGUMENT', `packet truncated: ${bytes.length} of ${size} bytes`, { bytes: bytes.length });
  return {
    numQuantizers,
    frameIndex: (bytes[1]! << 8) | bytes[2]!,
    codes: unpackCodes(bytes.subarray(HEADER_BYTES, size), numQuantizers),
    size,
  };
}

/** Splits a concatenation of packets (a .lyra stream as the CLI writes it). */
export function unpackStream(bytes: Uint8Array): CodecPacket[] {
  const out: CodecPacket[] = [];
  for (let p = 0; p < bytes.length;) {
    const { size, ...packet } = unpackPacket(bytes.subarray(p));
    out.push(packet);
    p += size;
  }
  return out;
}
