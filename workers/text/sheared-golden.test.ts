/**
 * The sheared recipe's committed model (models/stories-sheared: stories-layerskip pruned to 3 of 4
 * KV groups and 349 of 432 FFN channels per block, a plain smaller HF llama config with an
 * explicit head_dim) through Whittle's engine vs the recipe's own PyTorch model:
 * models/stories-sheared/golden-logits.json holds PyTorch logits (`shear.py golden`) at several
 * positions of held-out text. Read straight from the committed folder, so no fetch step is needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { maxRelativeError } from '../../models/head/reference.ts';
import { REPO_ROOT } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromHf } from './model.ts';

interface Golden {
  tokens: number[];
  positions: number[];
  logits: { full: number[][] };
}

const dir = join(REPO_ROOT, 'models', 'stories-sheared');
const read = (name: string) => {
  const buf = readFileSync(join(dir, name));
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
};

describe('stories-sheared vs its PyTorch model', () => {
  it('loads as its smaller shape and its logits match within 1e-4 (relative) on held-out text', async () => {
    const golden = JSON.parse(readFileSync(join(dir, 'golden-logits.json'), 'utf8')) as Golden;
    const model = textModelFromHf({ 'config.json': read('config.json'), 'model.safetensors': read('model.safetensors'), 'tokenizer.json': read('tokenizer.json') });
    expect([model.config.nHeads, model.config.nKvHeads, model.config.hiddenDim, model.config.dim]).toEqual([6, 3, 349, 160]);
    const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
    const engine = await TextEngine.create(ort, 'wasm', model);
    for (const [i, p] of golden.positions.entries()) {
      const got = await engine.logits(golden.tokens.slice(0, p + 1));
      expect(maxRelativeError(got, golden.logits.full[i]!), `position ${p}`).toBeLessThan(1e-4);
    }
    await engine.dispose();
  });
});
