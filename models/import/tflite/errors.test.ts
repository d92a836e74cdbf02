import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../local.ts';
import { WhittleError } from '../../../core/errors.ts';
import { convertSubgraph } from './convert.ts';
import { importLyra } from './lyra.ts';
import { readTflite } from './schema.ts';

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
});
