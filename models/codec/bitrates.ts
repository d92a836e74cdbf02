/**
 * Lyra v2 bitrates. Each residual-VQ stage emits a 4-bit code (16 entries) per 20 ms frame,
 * so a frame with n quantizers costs 4n bits and n * 0.2 kbps. The quantizer supports every
 * n in 1..46; Lyra's reference rates are 3.2, 6 and 9.2 kbps (16, 30 and 46 quantizers).
 */
import { WhittleError } from '../../core/errors.ts';
import { LYRA_V2 } from './lyra-v2.ts';

export const SAMPLE_RATE = LYRA_V2.sampleRate; // 16000
export const FRAME_SAMPLES = LYRA_V2.frameSamples; // 320
export const FRAMES_PER_SECOND = SAMPLE_RATE / FRAME_SAMPLES; // 50
export const BITS_PER_QUANTIZER = LYRA_V2.bitsPerQuantizer; // 4
export const MAX_QUANTIZERS = LYRA_V2.stages; // 46
/** A Whittle packet's header: quantizer count and 16-bit frame index (workers/codec/packet.ts). */
export const PACKET_HEADER_BYTES = 3;
/** The largest packet a stream can send: 46 quantizers (9.2 kbps), 23 bytes of codes, plus the header. */
export const MAX_PACKET_BYTES = PACKET_HEADER_BYTES + Math.ceil((MAX_QUANTIZERS * BITS_PER_QUANTIZER) / 8);
/** 3.2, 6 and 9.2 kbps. */
export const REFERENCE_QUANTIZERS = [16, 30, 46] as const;

export interface Bitrate {
  quantizers: number;
  bitsPerFrame: number;
  kbps: number;
  /** One of Lyra's three published rates (3.2, 6, 9.2 kbps). */
  reference: boolean;
}

/** Every bitrate the quantizer supports, lowest first. */
export const BITRATES: readonly Bitrate[] = Array.from({ length: MAX_QUANTIZERS }, (_, i) => {
  const quantizers = i + 1;
  const bitsPerFrame = quantizers * BITS_PER_QUANTIZER;
  return {
    quantizers,
    bitsPerFrame,
    kbps: Math.round(bitsPerFrame * FRAMES_PER_SECOND) / 1000,
    reference: (REFERENCE_QUANTIZERS as readonly number[]).includes(quantizers),
  };
});

/**
 * Quantizer count for a bitrate in kbps (must be a multiple of 0.2 kbps up to 9.2).
 * @example quantizersForKbps(6) // 30
 */
export function quantizersForKbps(kbps: number): number {
  const n = Math.round((kbps * 1000) / FRAMES_PER_SECOND / BITS_PER_QUANTIZER);
  if (!(n >= 1 && n <= MAX_QUANTIZERS) || Math.abs(n * 0.2 - kbps) > 1e-6) {
    throw new WhittleError(
      'INVALID_ARGUMENT',
      `Lyra supports 0.2..9.2 kbps in steps of 0.2 (3.2, 6, 9.2 are the reference rates), not ${kbps}`,
      { kbps },
    );
  }
  return n;
}

export function checkQuantizers(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_QUANTIZERS) {
    throw new WhittleError('INVALID_ARGUMENT', `numQuantizers must be an integer in 1..${MAX_QUANTIZERS}, got ${n}`, { numQuantizers: n });
  }
}
