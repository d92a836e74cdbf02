/**
 * models/import/tflite/: the three Lyra v2 flatbuffers mutated (edits land mostly outside the
 * weight buffers, on tables, vtables, offsets and vector lengths), read with readTflite, the
 * quantizer's codebooks extracted and, for some cases, its decode graph converted; plus tiny
 * generated models (the test writer) with hostile shapes, quantization and indices, converted.
 */
import { convertSubgraph } from '../../../models/import/tflite/convert.ts';
import { extractCodebooks } from '../../../models/import/tflite/lyra.ts';
import { readTflite } from '../../../models/import/tflite/schema.ts';
import { writeTflite, type WOp, type WTensor } from '../../../models/import/tflite/testing/tflite-writer.ts';
import { mutateBytes, type HotRange } from '../bytes.ts';
import { HOSTILE_U32 } from '../hostile.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import type { FuzzTarget } from '../target.ts';

interface Input {
  bytes: Uint8Array;
  name: string;
  convert: boolean;
}

interface Seed {
  name: string;
  bytes: Uint8Array;
  hot: HotRange[];
}

/** The file minus its constant buffers: where the flatbuffer's structure lives. */
function structureRanges(bytes: Uint8Array, name: string): HotRange[] {
  const data = readTflite(bytes, name)
    .subgraphs.flatMap((sg) => sg.tensors.map((t) => t.data))
    .filter((d): d is Uint8Array => d !== null && d.byteLength > 256)
    .map((d) => ({ start: d.byteOffset - bytes.byteOffset, end: d.byteOffset - bytes.byteOffset + d.byteLength }))
    .sort((a, b) => a.start - b.start);
  const hot: HotRange[] = [];
  let at = 0;
  for (const d of data) {
    if (d.start > at) hot.push({ start: at, end: d.start });
    at = Math.max(at, d.end);
  }
  if (at < bytes.byteLength) hot.push({ start: at, end: bytes.byteLength });
  return hot;
}

/** Ops the importer handles, with the inputs they take (tensor 0 is the graph input). */
const OPS: { code: number; inputs: number }[] = [
  { code: 0, inputs: 2 },
  { code: 2, inputs: 2 },
  { code: 3, inputs: 3 },
  { code: 4, inputs: 3 },
  { code: 6, inputs: 1 },
  { code: 18, inputs: 2 },
  { code: 22, inputs: 2 },
  { code: 36, inputs: 2 },
  { code: 45, inputs: 4 },
  { code: 49, inputs: 2 },
  { code: 53, inputs: 1 },
  { code: 56, inputs: 2 },
  { code: 67, inputs: 3 },
  { code: 74, inputs: 2 },
  { code: 83, inputs: 2 },
  { code: 85, inputs: 4 },
  { code: 98, inputs: 1 },
  { code: 99, inputs: 2 },
  { code: 114, inputs: 1 },
];

const DIMS = [0, 1, 2, 3, 4, 64, -1, -2, 0x7fffffff, 65536, 1 << 20];

function hostileShape(rng: Rng): number[] {
  if (chance(rng, 0.5)) return Array.from({ length: int(rng, 0, 4) }, () => pick(rng, [1, 2, 4]));
  return Array.from({ length: pick(rng, [0, 1, 2, 3, 4, 8, 64]) }, () => pick(rng, DIMS));
}

function tensor(rng: Rng, withData: boolean): WTensor {
  const type = chance(rng, 0.7) ? pick(rng, [0, 9]) : pick(rng, [1, 2, 3, 4, 6, 7, 13, 99]);
  const shape = hostileShape(rng);
  const t: WTensor = { shape, type };
  if (withData)
    t.data = new Uint8Array(
      chance(rng, 0.7)
        ? int(rng, 0, 64)
        : 4 *
            Math.max(
              0,
              Math.min(
                4096,
                shape.reduce((a, b) => a * Math.max(0, b), 1),
              ),
            ),
    );
  if (chance(rng, 0.4)) {
    const n = pick(rng, [0, 1, 2, 4, 1000]);
    t.quant = {
      scale: Array.from({ length: n }, () => pick(rng, [0.5, 0, -1, NaN, Infinity, 1e-40, 3e38])),
      zeroPoint: Array.from({ length: chance(rng, 0.8) ? n : int(rng, 0, 3) }, () => pick(rng, [0, 1, -128, 127, 2 ** 40, -(2 ** 40)])),
      axis: pick(rng, [0, 1, 3, -1, 100]),
    };
  }
  return t;
}

/** One op over hostile tensors (or a variable read with a hostile state shape). */
function generated(rng: Rng): Uint8Array {
  if (chance(rng, 0.15)) {
    // VAR_HANDLE -> READ_VARIABLE: the state's shape comes from the file and sizes its zero init.
    const state: WTensor = { shape: hostileShape(rng), type: 0 };
    return writeTflite([
      {
        tensors: [{ shape: [], type: 13 }, state],
        inputs: [],
        outputs: [1],
        ops: [
          { code: 142, inputs: [], outputs: [0] },
          { code: 143, inputs: [0], outputs: [1] },
        ],
      },
    ]);
  }
  const op = pick(rng, OPS);
  const tensors: WTensor[] = [tensor(rng, false)];
  const inputs = [0];
  for (let i = 1; i < op.inputs; i++) {
    tensors.push(tensor(rng, true));
    inputs.push(chance(rng, 0.95) ? i : pick(rng, [-1, 999, 0x7fffffff]));
  }
  tensors.push(tensor(rng, false));
  const out = tensors.length - 1;
  const wop: WOp = { code: op.code, inputs, outputs: [chance(rng, 0.95) ? out : pick(rng, [-1, 999])] };
  if (chance(rng, 0.6)) {
    wop.options = {
      type: int(rng, 0, 120),
      fields: Array.from({ length: int(rng, 1, 4) }, () => ({
        slot: int(rng, 0, 6),
        kind: pick(rng, ['i8', 'i32', 'f32'] as const),
        value: pick(rng, [0, 1, 2, -1, 255, 0x7fffffff, NaN]),
      })),
    };
  }
  return writeTflite([{ tensors, inputs: [0], outputs: [chance(rng, 0.9) ? out : pick(rng, [-1, 999])], ops: [wop] }]);
}

export function tfliteTarget(): FuzzTarget<Input> {
  let seeds: Seed[] = [];
  return {
    name: 'tflite',
    allocFactor: 4,
    load() {
      seeds = ['soundstream_encoder.tflite', 'quantizer.tflite', 'lyragan.tflite'].map((name) => {
        const bytes = seedBytes('lyra-v2', name);
        return { name, bytes, hot: structureRanges(bytes, name) };
      });
    },
    generate(rng) {
      if (chance(rng, 0.3)) {
        const bytes = chance(rng, 0.9) ? generated(rng) : mutateBytes(rng, generated(rng));
        return { input: { bytes, name: 'generated.tflite', convert: true }, bytes: bytes.byteLength, kind: 'generated' };
      }
      const seed = pick(rng, seeds);
      const bytes = mutateBytes(rng, seed.bytes, { hot: seed.hot, maxEdits: 4 });
      if (bytes.length >= 4 && chance(rng, 0.05)) new DataView(bytes.buffer).setUint32(0, pick(rng, HOSTILE_U32), true); // the root offset
      const convert = seed.name === 'quantizer.tflite' && chance(rng, 0.2);
      return { input: { bytes, name: seed.name, convert }, bytes: bytes.byteLength, kind: `mutate:${seed.name}` };
    },
    run({ bytes, name, convert }) {
      const model = readTflite(bytes, name);
      if (name === 'quantizer.tflite') {
        extractCodebooks(model);
        if (convert) {
          const sig = model.signatures.find((s) => s.key === 'decode');
          convertSubgraph(model, sig?.subgraph ?? 0, sig);
        }
      } else if (convert) {
        convertSubgraph(model, 0);
      }
    },
  };
}
