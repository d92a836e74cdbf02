/**
 * Writes the codec's varied test set (models/codec/testdata/speech-set/*.wav): espeak-ng speech in
 * several voices, rates and pitches, speech with seeded noise, clipped, quiet and 8 kHz-sourced
 * speech, and non-speech signals (chords, tones, a sweep, near-silence). 16 kHz mono int16, ~3 s
 * each. Deterministic: the same espeak-ng (1.51) and this script give the same bytes.
 *
 * Run: npx tsx scripts/codec-speech-set/generate.ts   (needs `espeak-ng`; CI reads the
 * committed clips and does not need it).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseWav, writeWav } from '../../core/wav.ts';
import { createRng, type Rng } from '../../core/random.ts';
import { resample } from '../../workers/codec/resample.ts';

const RATE = 16000;
const SECONDS = 3;
const LENGTH = RATE * SECONDS;
const OUT_DIR = join(dirname(fileURLToPath(import.meta.url)), '../../models/codec/testdata/speech-set');

const TEXTS = [
  'The quick brown fox jumps over the lazy dog, then sits down by the river to rest.',
  'Please call Stella and ask her to bring these things with her from the store.',
  'Seven thousand, four hundred and twelve people watched the final match on Sunday.',
  'Zwei kleine Vögel sitzen auf dem Dach und singen leise in der Sonne.',
  'Le petit chat dort sur le canapé pendant que la pluie tombe dehors.',
];

/** espeak-ng speech at its native 22050 Hz, resampled to `rate`. */
function speak(text: string, voice: string, wordsPerMinute: number, pitch: number, rate = RATE): Float32Array {
  const dir = mkdtempSync(join(tmpdir(), 'whittle-espeak-'));
  try {
    const file = join(dir, 'out.wav');
    execFileSync('espeak-ng', ['-v', voice, '-s', String(wordsPerMinute), '-p', String(pitch), '-w', file, text]);
    const pcm = parseWav(readFileSync(file), { mono: true });
    return resample(pcm.samples, pcm.sampleRate, rate);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Exactly LENGTH samples: cut, or padded with zeros. */
function fit(x: Float32Array, length = LENGTH): Float32Array {
  const out = new Float32Array(length);
  out.set(x.subarray(0, length));
  return out;
}

function scaleToPeak(x: Float32Array, peak: number): Float32Array {
  const max = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
  return x.map((v) => (v * peak) / max);
}

function rms(x: Float32Array): number {
  return Math.sqrt(x.reduce((s, v) => s + v * v, 0) / x.length);
}

/** Gaussian noise (Box-Muller over the seeded uniform generator). */
function gaussian(rng: Rng, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
  return out;
}

/** Pink-ish noise: white noise through a one-pole low-pass, mixed with the white part. */
function pinkish(rng: Rng, n: number): Float32Array {
  const w = gaussian(rng, n);
  let state = 0;
  return w.map((v) => (state = 0.97 * state + 0.3 * v) + 0.1 * v);
}

/** speech + noise scaled to `snrDb` below the speech's RMS. */
function withNoise(speech: Float32Array, noise: Float32Array, snrDb: number): Float32Array {
  const gain = rms(speech) / (rms(noise) * 10 ** (snrDb / 20));
  return scaleToPeak(
    speech.map((v, i) => v + gain * noise[i]!),
    0.9,
  );
}

/** A chord progression of decaying harmonic notes (a plucked, music-like texture). */
function chords(): Float32Array {
  const out = new Float32Array(LENGTH);
  const progression = [
    [261.63, 329.63, 392.0],
    [220.0, 261.63, 329.63],
    [174.61, 220.0, 261.63, 349.23],
    [196.0, 246.94, 293.66, 392.0],
  ];
  const noteLength = LENGTH / progression.length;
  progression.forEach((chord, c) => {
    for (const f of chord)
      for (let i = 0; i < noteLength; i++) {
        const t = i / RATE;
        const env = Math.exp(-3 * t) * Math.min(1, t * 200);
        let v = 0;
        for (let h = 1; h <= 6; h++) v += Math.sin(2 * Math.PI * f * h * t) / h ** 1.5;
        out[c * noteLength + i]! += 0.12 * env * v;
      }
  });
  return out;
}

/** Steady tones at a few frequencies and levels, one after another. */
function tones(): Float32Array {
  const parts: [number, number][] = [
    [100, 0.5],
    [440, 0.3],
    [1000, 0.8],
    [3150, 0.2],
    [7000, 0.5],
    [60, 0.9],
  ];
  const n = LENGTH / parts.length;
  const out = new Float32Array(LENGTH);
  parts.forEach(([f, a], k) => {
    for (let i = 0; i < n; i++) out[k * n + i] = a * Math.sin((2 * Math.PI * f * i) / RATE);
  });
  return out;
}

/** A logarithmic sweep 50 Hz -> 7.9 kHz. */
function sweep(): Float32Array {
  const [f0, f1] = [50, 7900];
  const k = Math.log(f1 / f0) / SECONDS;
  return Float32Array.from({ length: LENGTH }, (_, i) => 0.6 * Math.sin(((2 * Math.PI * f0) / k) * (Math.exp((k * i) / RATE) - 1)));
}

/** Digital silence, then faint dither, then a single click, then silence. */
function nearSilence(rng: Rng): Float32Array {
  const out = new Float32Array(LENGTH);
  const dither = gaussian(rng, LENGTH / 3);
  for (let i = 0; i < dither.length; i++) out[LENGTH / 3 + i] = dither[i]! * 3e-4;
  out[(2 * LENGTH) / 3 + 100] = 0.7;
  return out;
}

function clips(): Record<string, Float32Array> {
  const rng = createRng(16_05);
  const en = (voice: string, wpm: number, pitch: number, text = TEXTS[0]!) => scaleToPeak(fit(speak(text, voice, wpm, pitch)), 0.8);
  const base = en('en-us', 175, 50, TEXTS[1]);
  return {
    'en-us-175': base,
    'en-gb-rp-f3-140': en('en-gb-x-rp+f3', 140, 60, TEXTS[0]),
    'en-us-m7-260': en('en-us+m7', 260, 35, TEXTS[2]),
    'en-scotland-f5-110-high': en('en-gb-scotland+f5', 110, 90, TEXTS[1]),
    'en-us-croak-low': en('en-us+croak', 150, 10, TEXTS[2]),
    'en-us-whisper': en('en-us+whisper', 160, 50, TEXTS[0]),
    'en-klatt3': en('en+klatt3', 170, 55, TEXTS[1]),
    'de-f2-160': en('de+f2', 160, 55, TEXTS[3]),
    'fr-fr-m3-190': en('fr-fr+m3', 190, 45, TEXTS[4]),
    'cmn-150': en('cmn', 150, 50, '今天天气很好，我们去公园散步吧。'),
    'speech-white-noise-10db': withNoise(base, gaussian(rng, LENGTH), 10),
    'speech-pink-noise-0db': withNoise(en('en-gb-x-rp+f3', 140, 60, TEXTS[2]), pinkish(rng, LENGTH), 0),
    'speech-clipped': base.map((v) => Math.max(-0.5, Math.min(0.5, v * 6))),
    'speech-quiet-40db': base.map((v) => v * 0.01),
    'speech-8khz-source': scaleToPeak(resample(fit(speak(TEXTS[0]!, 'en-us+f4', 165, 50, 8000), 8000 * SECONDS), 8000, RATE), 0.8),
    chords: chords(),
    tones: tones(),
    sweep: sweep(),
    'near-silence': nearSilence(rng),
  };
}

mkdirSync(OUT_DIR, { recursive: true });
let total = 0;
const set = clips();
for (const [name, samples] of Object.entries(set)) {
  const bytes = new Uint8Array(writeWav(fit(samples), RATE));
  writeFileSync(join(OUT_DIR, `${name}.wav`), bytes);
  total += bytes.length;
}
console.log(`wrote ${Object.keys(set).length} clips, ${(total / 1e6).toFixed(2)} MB, to ${OUT_DIR}`);
