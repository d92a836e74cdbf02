/**
 * models/import/llama2c/tokenizer.ts: tok512.bin mutated (lengths, scores, the max token
 * length), generated vocabularies with hostile lengths and long pieces, and hostile vocabSize
 * arguments (the caller's), then converted to a tokenizer.json.
 */
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../../../models/import/llama2c/tokenizer.ts';
import { bufferOf, mutateBytes } from '../bytes.ts';
import { HOSTILE_U32, hostileNumber } from '../hostile.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

interface Input {
  buffer: ArrayBuffer;
  vocabSize: number;
}

function generated(rng: Rng): { bytes: Uint8Array; vocab: number } {
  const vocab = int(rng, 0, 300);
  const parts: number[] = [];
  const maxLen = chance(rng, 0.5) ? int(rng, 1, 64) : pick(rng, HOSTILE_U32);
  const push32 = (v: number) => parts.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  push32(maxLen);
  for (let i = 0; i < vocab; i++) {
    const f = new Uint8Array(new Float32Array([pick(rng, [0, -1, NaN, Infinity, -Infinity, i])]).buffer);
    parts.push(...f);
    if (chance(rng, 0.05)) {
      // Pieces that are also Object.prototype's keys.
      const piece = new TextEncoder().encode(pick(rng, ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']));
      push32(piece.length);
      parts.push(...piece);
      continue;
    }
    const len = chance(rng, 0.9) ? int(rng, 0, 12) : chance(rng, 0.5) ? int(rng, 0, 4096) : pick(rng, HOSTILE_U32);
    push32(len);
    const actual = Math.min(len, 4096);
    for (let k = 0; k < actual; k++) parts.push(chance(rng, 0.9) ? int(rng, 0x61, 0x64) : int(rng, 0, 255));
  }
  return { bytes: Uint8Array.from(parts), vocab };
}

export function llama2cTokenizerTarget(): FuzzTarget<Input> {
  let seed = new Uint8Array(0);
  return {
    name: 'llama2c-tokenizer',
    allocFactor: 16, // scores are 4 bytes per >= 8-byte record; the tokenizer.json is plain JS objects
    load() {
      seed = seedBytes('stories260K', 'tok512.bin');
    },
    generate(rng) {
      let bytes: Uint8Array;
      let vocabSize: number;
      let kind: string;
      if (chance(rng, 0.6)) {
        bytes = mutateBytes(rng, seed, { hot: [{ start: 0, end: 4 }] });
        vocabSize = 512;
        kind = 'mutate';
      } else {
        const g = generated(rng);
        bytes = g.bytes;
        vocabSize = g.vocab;
        kind = 'generated';
      }
      if (chance(rng, 0.15)) vocabSize = chance(rng, 0.5) ? hostileNumber(rng) : pick(rng, [0, 511, 513, 1 << 20, 1 << 30]);
      return { input: { buffer: bufferOf(bytes), vocabSize }, bytes: bytes.byteLength, kind };
    },
    run({ buffer, vocabSize }) {
      const tok = readLlama2cTokenizer(buffer, vocabSize);
      expectThat(tok.pieces.length === vocabSize && tok.scores.length === vocabSize, 'vocabulary size differs from the one asked for');
      const json = llama2cTokenizerToHf(tok);
      const vocab = json.model.vocab;
      expectThat(
        Object.values(vocab).every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize),
        'vocab ids out of range',
      );
      // Every ordinary piece is in the vocabulary under its first id.
      tok.pieces.forEach((p, id) => {
        if (id > 2)
          expectThat(
            Object.hasOwn(vocab, p.replaceAll(' ', '\u2581')) && vocab[p.replaceAll(' ', '\u2581')]! <= id,
            `piece ${JSON.stringify(p)} (${id}) missing from the vocabulary`,
          );
      });
    },
  };
}
