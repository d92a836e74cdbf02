/**
 * models/import/llama2c/checkpoint.ts: stories260K.bin with its header (and the weights right
 * after it) mutated, and generated legacy/v1 headers with hostile dims over small files.
 */
import { readLlama2cCheckpoint } from '../../../models/import/llama2c/checkpoint.ts';
import { bufferOf, mutateBytes } from '../bytes.ts';
import { HOSTILE_U32 } from '../hostile.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

function generated(rng: Rng): Uint8Array {
  const v1 = chance(rng, 0.5);
  const headerBytes = v1 ? 256 : 28;
  const out = new Uint8Array(headerBytes + int(rng, 0, 4096) * 4);
  const view = new DataView(out.buffer);
  const param = () => (chance(rng, 0.5) ? pick(rng, [1, 2, 4, 8, 16, 32, 64, 512]) : pick(rng, HOSTILE_U32));
  const base = v1 ? 8 : 0;
  if (v1) {
    view.setInt32(0, 0x616b3432, true);
    view.setInt32(4, chance(rng, 0.9) ? 1 : pick(rng, HOSTILE_U32), true);
    out[36] = int(rng, 0, 2);
  }
  for (let i = 0; i < 7; i++) view.setUint32(base + 4 * i, param(), true);
  return out;
}

export function llama2cCheckpointTarget(): FuzzTarget<ArrayBuffer> {
  let seed = new Uint8Array(0);
  return {
    name: 'llama2c-checkpoint',
    allocFactor: 1, // weights are views on the file
    load() {
      seed = seedBytes('stories260K', 'stories260K.bin');
    },
    generate(rng) {
      const bytes = chance(rng, 0.6)
        ? mutateBytes(rng, seed, {
            hot: [
              { start: 0, end: 28 },
              { start: 0, end: 256 },
            ],
          })
        : generated(rng);
      return {
        input: bufferOf(bytes),
        bytes: bytes.byteLength,
        kind: bytes.byteLength === seed.byteLength ? 'mutate' : 'generated-or-resized',
      };
    },
    run(buffer) {
      const { config: c, weights: w } = readLlama2cCheckpoint(buffer);
      const hs = c.dim / c.nHeads;
      const views = [
        w.tokenEmbedding,
        w.finalNorm,
        w.lmHead,
        ...w.layers.flatMap((l) => [l.attnNorm, l.wq, l.wk, l.wv, l.wo, l.ffnNorm, l.w1, l.w2, l.w3]),
      ];
      for (const v of views)
        expectThat(v.buffer === buffer && v.byteOffset + v.byteLength <= buffer.byteLength, 'a weight is not a view inside the file');
      expectThat(w.tokenEmbedding.length === c.vocabSize * c.dim && w.layers.length === c.nLayers, 'weights do not match the header');
      expectThat(
        Number.isInteger(hs) && w.layers.every((l) => l.wk.length === c.nKvHeads * hs * c.dim && l.w1.length === c.hiddenDim * c.dim),
        'layer shapes do not match the header',
      );
    },
  };
}
