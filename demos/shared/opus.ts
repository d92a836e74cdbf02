/**
 * Opus through WebCodecs (AudioEncoder/AudioDecoder), the codec a web developer would use
 * instead: 20 ms frames at 16 kHz mono, the requested bitrate, CBR where the browser allows.
 */
export interface OpusResult {
  decoded: Float32Array;
  /** Bits actually produced per second of audio. */
  actualKbps: number;
  requestedKbps: number;
  encodeMs: number;
  decodeMs: number;
}

export async function opusRoundTrip(pcm: Float32Array, kbps: number): Promise<OpusResult> {
  const sampleRate = 16000;
  const frame = 320;
  const config: AudioEncoderConfig = { codec: 'opus', sampleRate, numberOfChannels: 1, bitrate: Math.round(kbps * 1000), bitrateMode: 'constant' } as AudioEncoderConfig;
  (config as AudioEncoderConfig & { opus?: { frameDuration: number } }).opus = { frameDuration: 20000 };
  const support = await AudioEncoder.isConfigSupported(config);
  if (!support.supported) throw new Error(`Opus at ${kbps} kbps is not supported here`);
  const chunks: EncodedAudioChunk[] = [];
  let decoderConfig: AudioDecoderConfig | undefined;
  const encoder = new AudioEncoder({
    output: (chunk, meta) => {
      chunks.push(chunk);
      if (meta?.decoderConfig) decoderConfig = meta.decoderConfig;
    },
    error: (e) => {
      throw e;
    },
  });
  encoder.configure(config);
  const t0 = performance.now();
  for (let i = 0; i + frame <= pcm.length; i += frame) {
    const data = new AudioData({ format: 'f32', sampleRate, numberOfFrames: frame, numberOfChannels: 1, timestamp: Math.round((i / sampleRate) * 1e6), data: pcm.slice(i, i + frame) });
    encoder.encode(data);
    data.close();
  }
  await encoder.flush();
  const encodeMs = performance.now() - t0;
  encoder.close();
  const bytes = chunks.reduce((s, c) => s + c.byteLength, 0);

  const out: Float32Array[] = [];
  const decoder = new AudioDecoder({
    output: (data) => {
      const buf = new Float32Array(data.numberOfFrames);
      data.copyTo(buf, { planeIndex: 0, format: 'f32-planar' });
      out.push(data.sampleRate === sampleRate ? buf : resampleLinear(buf, data.sampleRate, sampleRate));
      data.close();
    },
    error: (e) => {
      throw e;
    },
  });
  decoder.configure(decoderConfig ?? { codec: 'opus', sampleRate, numberOfChannels: 1 });
  const t1 = performance.now();
  for (const c of chunks) decoder.decode(c);
  await decoder.flush();
  const decodeMs = performance.now() - t1;
  decoder.close();
  const decoded = new Float32Array(out.reduce((s, b) => s + b.length, 0));
  let p = 0;
  for (const b of out) {
    decoded.set(b, p);
    p += b.length;
  }
  return { decoded, actualKbps: (bytes * 8) / (pcm.length / sampleRate) / 1000, requestedKbps: kbps, encodeMs, decodeMs };
}

/** Only used if the browser decodes at another rate than asked (it resamples to the config rate in Chromium). */
function resampleLinear(x: Float32Array, from: number, to: number): Float32Array {
  const out = new Float32Array(Math.round((x.length * to) / from));
  for (let i = 0; i < out.length; i++) {
    const t = (i * from) / to;
    const k = Math.floor(t);
    out[i] = (x[k] ?? 0) * (1 - (t - k)) + (x[k + 1] ?? 0) * (t - k);
  }
  return out;
}

/** The lag (in samples, 0..maxLag) at which `dec` best matches `ref`: Opus adds look-ahead delay. */
export function bestLag(ref: Float32Array, dec: Float32Array, maxLag = 1200): number {
  let best = 0;
  let bestScore = -Infinity;
  const n = Math.min(ref.length, dec.length) - maxLag;
  for (let lag = 0; lag <= maxLag; lag += 1) {
    let s = 0;
    for (let i = 0; i < n; i += 4) s += ref[i]! * dec[i + lag]!;
    if (s > bestScore) {
      bestScore = s;
      best = lag;
    }
  }
  return best;
}
