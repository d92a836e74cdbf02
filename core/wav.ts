/**
 * WAV (RIFF PCM) read/write as pure functions over ArrayBuffers. Errors are typed
 * `WhittleError('INVALID_ARGUMENT')` with a `reason` detail: 'not-wav', 'truncated',
 * 'unsupported-format', 'stereo', 'wrong-rate', 'nan'.
 */
import { WhittleError } from './errors.ts';

/**
 * Decoded audio: what `parseWav` returns and `writeWav` takes.
 *
 * @example
 * const { sampleRate, channels, samples } = parseWav(await (await fetch('/clip.wav')).arrayBuffer());
 */
export interface PcmAudio {
  sampleRate: number;
  channels: number;
  /** Interleaved samples in [-1, 1] (int16 / 32768). */
  samples: Float32Array;
}

function bad(reason: string, message: string): WhittleError {
  return new WhittleError('INVALID_ARGUMENT', `WAV: ${message}`, { reason });
}

/**
 * Parses 16-bit PCM (or 32-bit float) WAV; `expect` turns a stereo file or another rate into
 * an `INVALID_ARGUMENT` error (with `details.reason`) instead of wrong audio.
 *
 * @example
 * const { samples } = parseWav(bytes, { mono: true, sampleRate: 16000 });
 * const speech = await codec.decode(await codec.encode(samples, { kbps: 6 }));
 */
export function parseWav(buffer: ArrayBuffer | Uint8Array, expect: { mono?: boolean; sampleRate?: number } = {}): PcmAudio {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (p: number) => String.fromCharCode(...bytes.subarray(p, p + 4));
  if (bytes.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') throw bad('not-wav', 'not a RIFF/WAVE file');
  let pos = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  while (pos + 8 <= bytes.byteLength) {
    const id = tag(pos);
    const size = v.getUint32(pos + 4, true);
    const body = pos + 8;
    if (id === 'fmt ') {
      if (size < 16 || body + 16 > bytes.byteLength) throw bad('truncated', 'fmt chunk is truncated');
      fmt = {
        format: v.getUint16(body, true),
        channels: v.getUint16(body + 2, true),
        rate: v.getUint32(body + 4, true),
        bits: v.getUint16(body + 14, true),
      };
      if (fmt.format === 0xfffe && size >= 40) {
        // WAVE_FORMAT_EXTENSIBLE: the real format is the subformat GUID's first two bytes, at 24 of the 40-byte body,
        // which the file must still hold (the check above covers 16).
        if (body + 26 > bytes.byteLength) throw bad('truncated', 'extensible fmt chunk is truncated');
        fmt.format = v.getUint16(body + 24, true);
      }
    } else if (id === 'data') {
      if (!fmt) throw bad('not-wav', 'data chunk before fmt chunk');
      if (body + size > bytes.byteLength) throw bad('truncated', `data chunk says ${size} bytes, file has ${bytes.byteLength - body}`);
      return decode(v, body, size, fmt, expect);
    }
    pos = body + size + (size & 1);
  }
  throw bad(fmt ? 'truncated' : 'not-wav', fmt ? 'no data chunk' : 'no fmt chunk');
}

function decode(
  v: DataView,
  start: number,
  size: number,
  fmt: { format: number; channels: number; rate: number; bits: number },
  expect: { mono?: boolean; sampleRate?: number },
): PcmAudio {
  if (fmt.channels < 1) throw bad('unsupported-format', 'zero channels');
  // A rate of 0 would reach resampling as a division by zero.
  if (fmt.rate < 1) throw bad('unsupported-format', 'sample rate 0');
  if (expect.mono && fmt.channels !== 1) throw bad('stereo', `expected mono audio, got ${fmt.channels} channels`);
  if (expect.sampleRate !== undefined && fmt.rate !== expect.sampleRate)
    throw bad('wrong-rate', `expected ${expect.sampleRate} Hz, got ${fmt.rate} Hz (resample first)`);
  let samples: Float32Array;
  if (fmt.format === 1 && fmt.bits === 16) {
    samples = new Float32Array(Math.floor(size / 2));
    for (let i = 0; i < samples.length; i++) samples[i] = v.getInt16(start + 2 * i, true) / 32768;
  } else if (fmt.format === 3 && fmt.bits === 32) {
    samples = new Float32Array(Math.floor(size / 4));
    for (let i = 0; i < samples.length; i++) samples[i] = v.getFloat32(start + 4 * i, true);
    if (samples.some((x) => !Number.isFinite(x))) throw bad('nan', 'float WAV contains NaN or infinity');
  } else {
    throw bad('unsupported-format', `format ${fmt.format} with ${fmt.bits} bits (16-bit PCM or 32-bit float only)`);
  }
  return { sampleRate: fmt.rate, channels: fmt.channels, samples };
}

/**
 * 16-bit PCM WAV. Samples are clamped to [-1, 1] and scaled by 32767 (Lyra's output convention);
 * NaN or infinite input is an INVALID_ARGUMENT error rather than silent noise.
 *
 * @example
 * const speech = await codec.decode(packets); // 16 kHz
 * const url = URL.createObjectURL(new Blob([writeWav(speech, 16000)], { type: 'audio/wav' }));
 */
export function writeWav(samples: Float32Array, sampleRate: number, channels = 1): ArrayBuffer {
  if (!Number.isInteger(sampleRate) || sampleRate <= 0) throw bad('unsupported-format', `bad sample rate ${sampleRate}`);
  const out = new ArrayBuffer(44 + samples.length * 2);
  const v = new DataView(out);
  const put = (p: number, s: string) => [...s].forEach((c, i) => v.setUint8(p + i, c.charCodeAt(0)));
  put(0, 'RIFF');
  v.setUint32(4, 36 + samples.length * 2, true);
  put(8, 'WAVE');
  put(12, 'fmt ');
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  put(36, 'data');
  v.setUint32(40, samples.length * 2, true);
  for (let i = 0; i < samples.length; i++) {
    const x = samples[i]!;
    if (!Number.isFinite(x)) throw bad('nan', `sample ${i} is ${x}`);
    v.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, x)) * 32767), true);
  }
  return out;
}
