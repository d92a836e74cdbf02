/** Pure functions of the codec: WAV, packets, bitrates, resampling, the distance. */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { WhittleError } from '../../core/errors.ts';
import { BITRATES, quantizersForKbps } from '../../models/codec/bitrates.ts';
import { logSpectralDistance } from '../../core/audio-metrics.ts';
import { HEADER_BYTES, packCodes, packPacket, unpackCodes, unpackPacket, unpackStream } from './packet.ts';
import { resample } from './resample.ts';
import { parseWav, writeWav } from '../../core/wav.ts';
import { Framer } from './framer.ts';

function errorOf(fn: () => unknown): WhittleError {
  try {
    fn();
  } catch (e) {
    if (e instanceof WhittleError) return e;
    throw e;
  }
  throw new Error('expected a WhittleError');
}

describe('wav', () => {
  it('parses the 16 kHz clips and round-trips through writeWav', () => {
    const a = parseWav(readLocalModelFile('lyra-testdata', 'sample1_16kHz.wav'), { mono: true, sampleRate: 16000 });
    expect(a.sampleRate).toBe(16000);
    expect(a.samples.length).toBeGreaterThan(50_000);
    const b = parseWav(writeWav(a.samples, 16000));
    // int16/32768 in, x32767 out: at most one LSB apart.
    for (let i = 0; i < a.samples.length; i += 97) expect(Math.abs(b.samples[i]! - a.samples[i]!)).toBeLessThanOrEqual(1.01 / 32768);
  });

  it('invalid.wav, stereo, wrong rate, truncation and NaN are typed INVALID_ARGUMENT errors', () => {
    expect(errorOf(() => parseWav(readLocalModelFile('lyra-testdata', 'invalid.wav'))).details.reason).toBe('not-wav');
    const stereo = writeWav(new Float32Array(64), 16000, 2);
    expect(errorOf(() => parseWav(stereo, { mono: true })).details.reason).toBe('stereo');
    expect(errorOf(() => parseWav(readLocalModelFile('lyra-testdata', 'sample1_48kHz.wav'), { sampleRate: 16000 })).details.reason).toBe(
      'wrong-rate',
    );
    expect(errorOf(() => parseWav(new Uint8Array(writeWav(new Float32Array(64), 16000)).subarray(0, 60))).details.reason).toBe('truncated');
    const e = errorOf(() => writeWav(Float32Array.of(0, NaN), 16000));
    expect([e.code, e.details.reason]).toEqual(['INVALID_ARGUMENT', 'nan']);
  });
});

describe('packets', () => {
  it('pack/unpack is the identity at every supported rate, first code in the top bits', () => {
    for (const { quantizers } of BITRATES) {
      const codes = Int32Array.from({ length: 46 }, (_, s) => (s < quantizers ? (s * 5 + quantizers) % 16 : -1));
      const bytes = packPacket(codes, quantizers, 70000 + quantizers);
      expect(bytes.length).toBe(HEADER_BYTES + Math.ceil(quantizers / 2));
      const p = unpackPacket(bytes);
      expect(p.numQuantizers).toBe(quantizers);
      expect(p.frameIndex).toBe((70000 + quantizers) & 0xffff);
      expect(Array.from(p.codes)).toEqual(Array.from(codes));
    }
    expect(Array.from(packCodes([0xa, 0x3, 0xf], 3))).toEqual([0xa3, 0xf0]);
    expect(Array.from(unpackCodes(Uint8Array.of(0xa3, 0xf0), 3).subarray(0, 4))).toEqual([10, 3, 15, -1]);
  });

  it('a stream of packets at changing rates splits back into frames', () => {
    const rates = [16, 30, 46, 1, 16];
    const packets = rates.map((n, f) => packPacket(new Int32Array(46).fill(f % 16), n, f));
    const stream = new Uint8Array(packets.reduce((a, p) => a + p.length, 0));
    packets.reduce((o, p) => (stream.set(p, o), o + p.length), 0);
    expect(unpackStream(stream).map((p) => [p.numQuantizers, p.frameIndex])).toEqual(rates.map((n, f) => [n, f]));
  });

  it('bad codes and bad packets are INVALID_ARGUMENT', () => {
    expect(errorOf(() => packCodes([16], 1)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => packCodes([1, -1], 2)).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => unpackPacket(Uint8Array.of(47, 0, 0))).code).toBe('INVALID_ARGUMENT');
    expect(errorOf(() => unpackPacket(Uint8Array.of(30, 0, 0, 1))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('bitrates', () => {
  it('lists 46 rates, 0.2 kbps apart, with the three reference rates marked', () => {
    expect(BITRATES).toHaveLength(46);
    expect(BITRATES.filter((b) => b.reference).map((b) => [b.quantizers, b.bitsPerFrame, b.kbps])).toEqual([
      [16, 64, 3.2],
      [30, 120, 6],
      [46, 184, 9.2],
    ]);
    expect(quantizersForKbps(6)).toBe(30);
    expect(errorOf(() => quantizersForKbps(6.1)).code).toBe('INVALID_ARGUMENT');
  });
});

describe('resample and distance', () => {
  it('keeps a 1 kHz tone through 48k -> 16k -> 48k', () => {
    const x = Float32Array.from({ length: 4800 }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 1000 * i) / 48000));
    const down = resample(x, 48000, 16000);
    expect(down.length).toBe(1600);
    for (let i = 200; i < 1400; i++) expect(down[i]!).toBeCloseTo(0.5 * Math.sin((2 * Math.PI * 1000 * i) / 16000), 2);
    const up = resample(down, 16000, 48000);
    for (let i = 600; i < 4200; i++) expect(up[i]!).toBeCloseTo(x[i]!, 2);
  });

  it('removes content above the new Nyquist instead of aliasing it', () => {
    const x = Float32Array.from({ length: 4800 }, (_, i) => Math.sin((2 * Math.PI * 12000 * i) / 48000)); // 12 kHz
    const down = resample(x, 48000, 16000);
    const mid = down.subarray(200, 1400);
    expect(Math.max(...mid.map(Math.abs))).toBeLessThan(0.01);
  });

  it('the 48 kHz clip resampled to 16 kHz is spectrally close to the 16 kHz clip', () => {
    const a48 = parseWav(readLocalModelFile('lyra-testdata', 'sample1_48kHz.wav'), { mono: true }).samples;
    const a16 = parseWav(readLocalModelFile('lyra-testdata', 'sample1_16kHz.wav'), { mono: true }).samples;
    const mine = resample(a48, 48000, 16000);
    expect(logSpectralDistance(a16, mine)).toBeLessThan(3);
    expect(logSpectralDistance(a16, a16)).toBe(0);
    // Halving a loud broadband signal moves every bin by 6.02 dB (the 1e-8 floor is far below it).
    let seed = 1;
    const noise = Float32Array.from({ length: 8000 }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.8);
    expect(
      logSpectralDistance(
        noise,
        noise.map((v) => v * 0.5),
      ),
    ).toBeCloseTo(20 * Math.log10(2), 1);
  });
});

describe('Framer', () => {
  it('cuts 128-sample blocks into 320-sample frames in order and pads the tail', () => {
    const framer = new Framer();
    const all = Float32Array.from({ length: 1000 }, (_, i) => i);
    const frames: Float32Array[] = [];
    for (let p = 0; p < all.length; p += 128) frames.push(...framer.push(all.subarray(p, p + 128)));
    expect(frames.map((f) => [f[0], f[319]])).toEqual([
      [0, 319],
      [320, 639],
      [640, 959],
    ]);
    expect(framer.buffered).toBe(40);
    const tail = framer.flush()!;
    expect([tail[0], tail[39], tail[40]]).toEqual([960, 999, 0]);
    expect(framer.flush()).toBeNull();
  });
});
