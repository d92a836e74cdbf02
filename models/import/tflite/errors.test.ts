import { Builder } from 'flatbuffers';
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../local.ts';
import { WhittleError } from '../../../core/errors.ts';
import { convertSubgraph } from './convert.ts';
import { importLyra } from './lyra.ts';
import { readTflite } from './schema.ts';
import { bytesOf, writeTflite, type WSubgraph, type WTensor } from './testing/tflite-writer.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(WhittleError);
    return `${(e as WhittleError).code}: ${(e as WhittleError).message}`;
  }
  return 'no error';
}

describe('TFLite importer errors', () => {
  const enc = new Uint8Array(readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'));

  it('a truncated file is BAD_MODEL', () => {
    expect(codeOf(() => readTflite(enc.slice(0, 4096), 'soundstream_encoder.tflite'))).toMatch(/^BAD_MODEL: soundstream_encoder.tflite/);
    expect(codeOf(() => readTflite(enc.slice(0, 6), 'x.tflite'))).toMatch(/^BAD_MODEL/);
  });

  it('a non-TFLite file is BAD_MODEL', () => {
    expect(codeOf(() => readTflite(readLocalModelFile('lyra-testdata', 'invalid.wav'), 'invalid.wav'))).toMatch(/^BAD_MODEL: invalid.wav/);
    const garbage = new Uint8Array(256).fill(0xff);
    garbage.set([0x10, 0, 0, 0, 0x54, 0x46, 0x4c, 0x33]); // right identifier, nonsense tables
    expect(codeOf(() => readTflite(garbage, 'garbage.tflite'))).toMatch(/^BAD_MODEL/);
    expect(codeOf(() => importLyra({ encoder: enc, quantizer: new Uint8Array(10), decoder: enc }))).toMatch(/^BAD_MODEL: quantizer.tflite/);
  });

  it('an unknown op is UNSUPPORTED and names the op and the model', () => {
    const model = readTflite(enc, 'soundstream_encoder.tflite');
    const leaky = model.subgraphs[0]!.operators.find((o) => o.code === 98)!;
    leaky.code = 150; // GELU: not something Lyra uses
    expect(codeOf(() => convertSubgraph(model, 0))).toMatch(/^UNSUPPORTED: soundstream_encoder.tflite: BUILTIN_150 is not supported/);
    leaky.code = -1;
    leaky.customCode = 'MyOp';
    expect(codeOf(() => convertSubgraph(model, 0))).toMatch(/CUSTOM\(MyOp\)/);
  });

  // Fuzz findings (scripts/fuzz/targets/tflite.ts), minimized: tensors whose claims the importer
  // trusted, failing later with a RangeError, the ONNX builder's plain Error, or a huge allocation.
  const oneAdd = (constant: WTensor): WSubgraph[] => [
    {
      tensors: [{ shape: [1], type: 0 }, constant, { shape: [1], type: 0 }],
      inputs: [0],
      outputs: [2],
      ops: [{ code: 0, inputs: [0, 1], outputs: [2] }],
    },
  ];
  const four = bytesOf(Float32Array.of(1));

  it.each([
    ['a negative dim', { shape: [-1048576, 4], type: 0, data: four }],
    ['dims whose product is 3e26 elements', { shape: [65536, 2147483647, 2, 2147483647], type: 0, data: four }],
    ['data shorter than its shape', { shape: [2], type: 0, data: four }],
    ['a float32 constant of 3 bytes', { shape: [1], type: 0, data: new Uint8Array(3) }],
    ['a NaN quantization scale', { shape: [1], type: 9, data: new Uint8Array(1), quant: { scale: [NaN], zeroPoint: [0] } }],
    [
      'per-channel scales that do not match the axis',
      { shape: [1, 2], type: 9, data: new Uint8Array(2), quant: { scale: [0.5, 0.5, 0.5], zeroPoint: [0, 0, 0], axis: 1 } },
    ],
  ] as [string, WTensor][])('a constant with %s is BAD_MODEL at read time', (_, constant) => {
    const bytes = writeTflite(oneAdd(constant));
    expect(codeOf(() => readTflite(bytes, 'hostile.tflite'))).toMatch(/^BAD_MODEL: hostile.tflite/);
  });

  it('a streaming state claiming 2^32 elements is refused before its zero state is allocated', () => {
    const state: WTensor = { shape: [65536, 65536], type: 0 };
    const bytes = writeTflite([
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
    expect(codeOf(() => readTflite(bytes, 'state.tflite'))).toMatch(/^BAD_MODEL: state.tflite.*claims 4294967296 elements/);
  });

  it('a file whose vectors all point at one shared table is refused, not materialized 10^8 times', () => {
    // Offsets may point anywhere: 10,000 subgraphs naming one subgraph of 10,000 tensors naming
    // one tensor is 80 KB on disk and 10^8 tensors when read naively (minutes, then out of memory).
    const b = new Builder(1024);
    b.startVector(4, 1, 4);
    b.addInt32(1);
    const shape = b.endVector();
    b.startObject(10);
    b.addFieldOffset(0, shape, 0);
    const tensor = b.endObject();
    const repeat = (offset: number, n: number) => {
      b.startVector(4, n, 4);
      for (let i = 0; i < n; i++) b.addOffset(offset);
      return b.endVector();
    };
    const tensors = repeat(tensor, 10_000);
    b.startObject(5);
    b.addFieldOffset(0, tensors, 0);
    const subgraph = b.endObject();
    const subgraphs = repeat(subgraph, 10_000);
    b.startObject(5);
    b.addFieldOffset(2, subgraphs, 0);
    b.finish(b.endObject(), 'TFL3');
    const t0 = performance.now();
    expect(codeOf(() => readTflite(b.asUint8Array(), 'shared.tflite'))).toMatch(/^BAD_MODEL: shared.tflite.*shared or cyclic offsets/);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it('a graph input or output index past the tensor list is BAD_MODEL, not a TypeError', () => {
    const model = readTflite(writeTflite([{ tensors: [{ shape: [1], type: 0 }], inputs: [7], outputs: [0], ops: [] }]), 'io.tflite');
    expect(codeOf(() => convertSubgraph(model, 0))).toMatch(/^BAD_MODEL: io.tflite: tensor index 7 out of range/);
  });
});
