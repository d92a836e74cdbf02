import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { maxRelativeError, referenceHeadLogits } from '../../models/head/reference.ts';
import { WhittleError } from '../../core/errors.ts';
import { HeadEngine } from './engine.ts';

const tokens = [1, 403, 407, 261, 378, 432, 383, 286, 2, 0, 511];

describe('HeadEngine (stories260K zero-block plan, ORT WASM in Node)', () => {
  it('matches the independent reference within 1e-5', async () => {
    const engine = new HeadEngine();
    const info = await engine.init({ backend: 'wasm', numThreads: 1 });
    expect(info.backend).toBe('wasm');
    const file = readLocalModelFile('stories260K', 'stories260K.bin');
    const expected = referenceHeadLogits(file, tokens);
    const model = await engine.load(file.slice(0), 'stories260K.bin');
    expect(model).toMatchObject({ dim: 64, vocabSize: 512, nLayers: 5 });
    const got = await engine.logits(Int32Array.from(tokens));
    expect(got.length).toBe(tokens.length * 512);
    expect(maxRelativeError(got, expected)).toBeLessThan(1e-5);
    await engine.dispose();
  });

  it('rejects a truncated checkpoint and out-of-vocabulary ids with typed errors', async () => {
    const engine = new HeadEngine();
    await engine.init({ backend: 'wasm', numThreads: 1 });
    const file = readLocalModelFile('stories260K', 'stories260K.bin');
    await expect(engine.load(file.slice(0, 500_000))).rejects.toMatchObject({ code: 'BAD_MODEL' });
    await engine.load(file.slice(0));
    const err = await engine.logits(Int32Array.from([512])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).code).toBe('INVALID_ARGUMENT');
  });
});
