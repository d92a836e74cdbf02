/**
 * TEST-ONLY: TFLite's integer requantization re-implemented with BigInt, as an independent
 * reference (quantization_util / reference_ops; the multiplier split is requant.ts's
 * quantizeMultiplier, itself checked against frexp semantics in requant.test.ts).
 */
import { quantizeMultiplier } from '../requant.ts';

/** MultiplyByQuantizedMultiplier: SaturatingRoundingDoublingHighMul, then RoundingDivideByPOT. */
export function tfliteDoubleRounding(acc: number, m: number): number {
  const [q31, shift] = quantizeMultiplier(m);
  const left = Math.max(shift, 0);
  const right = BigInt(Math.max(-shift, 0));
  const ab = BigInt(acc) * 2n ** BigInt(left) * BigInt(q31);
  const nudge = ab >= 0n ? 1n << 30n : 1n - (1n << 30n);
  const h = (ab + nudge) / (1n << 31n); // C++ division truncates toward zero, like BigInt
  const mask = (1n << right) - 1n;
  const threshold = (mask >> 1n) + (h < 0n ? 1n : 0n);
  return Number((h >> right) + ((h & mask) > threshold ? 1n : 0n));
}

/** ruy's single rounding: (acc * q31 + 2^(total-1)) >> total, total = 31 - shift. */
export function ruySingleRounding(acc: number, m: number): number {
  const [q31, shift] = quantizeMultiplier(m);
  const total = BigInt(31 - shift);
  return Number((BigInt(acc) * BigInt(q31) + (1n << (total - 1n))) >> total);
}
