/**
 * core/wav.ts parseWav: the Lyra test clips mutated (RIFF header, fmt and data chunk sizes) and
 * generated RIFF files with hostile chunk sizes, channel counts, rates, formats and many chunks,
 * parsed with and without the mono / sample-rate expectations the codec passes.
 */
import { parseWav } from '../../../core/wav.ts';
import { bufferOf, mutateBytes } from '../bytes.ts';
import { HOSTILE_U32 } from '../hostile.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

interface Input {
  bytes: ArrayBuffer | Uint8Array;
  expect: { mono?: boolean; sampleRate?: number };
}

const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

function generated(rng: Rng): Uint8Array {
  const out: number[] = [...ascii('RIFF'), 0, 0, 0, 0, ...ascii('WAVE')];
  const u32 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  const u16 = (v: number) => out.push(v & 0xff, (v >>> 8) & 0xff);
  const chunks = int(rng, 0, 4);
  for (let c = 0; c < chunks; c++) {
    const id = pick(rng, ['fmt ', 'data', 'LIST', 'fact', 'fmt ']);
    out.push(...ascii(id));
    if (id === 'fmt ') {
      const size = pick(rng, [16, 18, 40, 14, 0, 0xffffffff]);
      u32(size);
      u16(pick(rng, [1, 3, 0xfffe, 0, 2, 0xffff]));
      u16(pick(rng, [1, 2, 0, 3, 65535]));
      u32(chance(rng, 0.6) ? pick(rng, [16000, 48000, 8000, 44100]) : pick(rng, HOSTILE_U32));
      u32(pick(rng, HOSTILE_U32));
      u16(pick(rng, [2, 4, 0]));
      u16(pick(rng, [16, 32, 8, 24, 0]));
      if (size >= 18 && size < 1000) for (let i = 16; i < size; i++) out.push(chance(rng, 0.5) ? 0 : pick(rng, [1, 3, 0xff]));
    } else {
      const actual = int(rng, 0, 256);
      u32(chance(rng, 0.6) ? actual : pick(rng, HOSTILE_U32));
      for (let i = 0; i < actual; i++) out.push(chance(rng, 0.1) ? 0xff : int(rng, 0, 255));
    }
  }
  if (chance(rng, 0.05)) for (let i = 0; i < 20_000; i++) out.push(...ascii('junk'), 0, 0, 0, 0); // many empty chunks
  return Uint8Array.from(out);
}

export function wavTarget(): FuzzTarget<Input> {
  let seeds: Uint8Array[] = [];
  return {
    name: 'wav',
    allocFactor: 2.5, // 16-bit PCM widens to float32
    load() {
      seeds = ['sample1_16kHz.wav', 'sample2_48kHz.wav', 'invalid.wav'].map((f) => seedBytes('lyra-testdata', f));
    },
    generate(rng) {
      const bytes = chance(rng, 0.5) ? mutateBytes(rng, pick(rng, seeds), { hot: [{ start: 0, end: 64 }] }) : generated(rng);
      const expect = chance(rng, 0.5)
        ? {}
        : { mono: chance(rng, 0.5), ...(chance(rng, 0.5) ? { sampleRate: pick(rng, [16000, 48000]) } : {}) };
      // Also as a Uint8Array view into a larger buffer (the API takes both).
      const input = chance(rng, 0.2)
        ? (() => {
            const big = new Uint8Array(bytes.length + 16);
            big.set(bytes, 7);
            return big.subarray(7, 7 + bytes.length);
          })()
        : bufferOf(bytes);
      return { input: { bytes: input, expect }, bytes: bytes.byteLength, kind: 'wav' };
    },
    run({ bytes, expect }) {
      const audio = parseWav(bytes, expect);
      expectThat(audio.channels >= 1 && Number.isInteger(audio.channels), `channels ${audio.channels}`);
      expectThat(audio.sampleRate > 0 && Number.isInteger(audio.sampleRate), `sample rate ${audio.sampleRate}`);
      expectThat(
        audio.samples.every((x) => Number.isFinite(x)),
        'non-finite sample',
      );
      expectThat(audio.samples.length * 2 <= bytes.byteLength, 'more samples than the file holds');
      if (expect.mono) expectThat(audio.channels === 1, 'stereo accepted as mono');
      if (expect.sampleRate !== undefined) expectThat(audio.sampleRate === expect.sampleRate, 'wrong rate accepted');
    },
  };
}
