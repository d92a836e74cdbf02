/**
 * Objective distance between a reference and a decoded signal.
 *
 * Log-spectral distance (LSD), in dB:
 *   LSD = mean over frames t of sqrt( mean over bins k of (10 log10 (P_ref[t,k] + e) - 10 log10 (P_dec[t,k] + e))^2 )
 * with P the power spectrum of 512-sample Hann-windowed frames, hop 256, bins 0..256, and
 * e = 1e-8 (about -80 dB re full scale) so silence does not dominate. Frames where the
 * reference is more than 50 dB below its loudest frame are skipped: a codec is judged on
 * speech, not on its noise floor. It ignores phase, so it suits a generative decoder whose
 * waveform need not match sample by sample.
 */

/**
 * Frame size and hop of the log-spectral distance (defaults 512 and 256 samples).
 *
 * @example
 * logSpectralDistance(reference, decoded, { frameSize: 1024, hop: 512 } satisfies LsdOptions);
 */
export interface LsdOptions {
  frameSize?: number;
  hop?: number;
}

/**
 * Log-spectral distance in dB between a reference and a decoded signal (same rate; the shorter
 * length is compared): lower is closer. See the definition at the top of this file.
 *
 * @example
 * const decoded = await codec.decode(await codec.encode(pcm, { kbps: 3.2 }));
 * console.log(`${logSpectralDistance(pcm, decoded).toFixed(2)} dB`);
 */
export function logSpectralDistance(ref: Float32Array, dec: Float32Array, options: LsdOptions = {}): number {
  const size = options.frameSize ?? 512;
  const hop = options.hop ?? 256;
  const n = Math.min(ref.length, dec.length);
  const window = Float64Array.from({ length: size }, (_, i) => 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / size));
  const frames: { r: Float64Array; d: Float64Array; energy: number }[] = [];
  for (let start = 0; start + size <= n; start += hop) {
    const r = powerSpectrum(ref.subarray(start, start + size), window);
    const d = powerSpectrum(dec.subarray(start, start + size), window);
    frames.push({ r, d, energy: r.reduce((a, b) => a + b, 0) });
  }
  if (frames.length === 0) return NaN;
  const loudest = Math.max(...frames.map((f) => f.energy));
  const eps = 1e-8;
  let sum = 0;
  let count = 0;
  for (const f of frames) {
    if (f.energy < loudest * 1e-5) continue;
    let acc = 0;
    for (let k = 0; k < f.r.length; k++) {
      const diff = 10 * Math.log10(f.r[k]! + eps) - 10 * Math.log10(f.d[k]! + eps);
      acc += diff * diff;
    }
    sum += Math.sqrt(acc / f.r.length);
    count++;
  }
  return sum / count;
}

/** |FFT|^2 / size of a windowed frame, bins 0..size/2 (size a power of two). */
export function powerSpectrum(frame: Float32Array, window: Float64Array): Float64Array {
  const size = frame.length;
  const re = Float64Array.from(frame, (x, i) => x * window[i]!);
  const im = new Float64Array(size);
  fft(re, im);
  return Float64Array.from({ length: size / 2 + 1 }, (_, k) => (re[k]! * re[k]! + im[k]! * im[k]!) / size);
}

/** In-place iterative radix-2 FFT. */
function fft(re: Float64Array, im: Float64Array): void {
  const n = re.length;
  if ((n & (n - 1)) !== 0) throw new RangeError(`FFT size ${n} is not a power of two`);
  for (let i = 1, j = 0; i < n; i++) {
    let bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) {
      [re[i], re[j]] = [re[j]!, re[i]!];
      [im[i], im[j]] = [im[j]!, im[i]!];
    }
  }
  for (let len = 2; len <= n; len <<= 1) {
    const ang = (-2 * Math.PI) / len;
    for (let i = 0; i < n; i += len) {
      for (let k = 0; k < len / 2; k++) {
        const wr = Math.cos(ang * k);
        const wi = Math.sin(ang * k);
        const a = i + k;
        const b = a + len / 2;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
}

/** Root-mean-square level. */
export function rms(x: Float32Array): number {
  let s = 0;
  for (const v of x) s += v * v;
  return Math.sqrt(s / Math.max(1, x.length));
}
