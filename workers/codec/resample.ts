/**
 * Band-limited resampling (windowed sinc, Blackman window) as a pure function.
 * Used to bring 8..48 kHz input to Lyra's 16 kHz and back. Downsampling lowers the filter
 * cutoff to the new Nyquist so nothing aliases.
 */
import { WhittleError } from '../../core/errors.ts';

/** Zero crossings of the sinc on each side: ~70 dB stopband with Blackman, cheap enough per sample. */
const HALF_TAPS = 24;

/**
 * @example const x16k = resample(x48k, 48000, 16000);
 */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  if (!(fromRate > 0) || !(toRate > 0) || !Number.isFinite(fromRate) || !Number.isFinite(toRate)) {
    throw new WhittleError('INVALID_ARGUMENT', `bad sample rates ${fromRate} -> ${toRate}`, { fromRate, toRate });
  }
  if (fromRate === toRate) return input.slice();
  const ratio = toRate / fromRate;
  const outLength = Math.round(input.length * ratio);
  const out = new Float32Array(outLength);
  const cutoff = Math.min(1, ratio) * 0.97; // of the input Nyquist, a little below to leave a transition band
  const halfWidth = HALF_TAPS / cutoff; // in input samples
  for (let n = 0; n < outLength; n++) {
    const t = n / ratio; // position in input samples
    const lo = Math.max(0, Math.ceil(t - halfWidth));
    const hi = Math.min(input.length - 1, Math.floor(t + halfWidth));
    let acc = 0;
    for (let k = lo; k <= hi; k++) {
      const x = k - t;
      const u = x / halfWidth; // -1..1 over the window
      const w = 0.42 + 0.5 * Math.cos(Math.PI * u) + 0.08 * Math.cos(2 * Math.PI * u);
      const arg = Math.PI * cutoff * x;
      const sinc = arg === 0 ? 1 : Math.sin(arg) / arg;
      acc += input[k]! * cutoff * sinc * w;
    }
    out[n] = acc;
  }
  return out;
}
