/**
 * The recipe's trained models through Whittle's engine vs the recipe's own PyTorch model:
 * models/<id>/golden-logits.json holds PyTorch logits (models/recipes/layerskip/golden.py) at
 * several positions of held-out text, at full depth and at early exits 2 and 4.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readLocalModelFile } from '../../models/local.ts';
import { maxRelativeError } from '../../models/head/reference.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromHf } from './model.ts';

interface Golden {
  tokens: number[];
  positions: number[];
  logits: Record<'full' | 'exit2' | 'exit4', number[][]>;
}

// The fetched, sha256-checked copies of the committed model files.
const read = readLocalModelFile;

describe.each(['stories-layerskip', 'stories-baseline'])('%s vs its PyTorch model', (id) => {
  it('full-depth and early-exit logits match within 1e-4 (relative) on held-out text', async () => {
    const golden = JSON.parse(readFileSync(join(REPO_ROOT, 'models', id, 'golden-logits.json'), 'utf8')) as Golden;
    const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
    const model = textModelFromHf({ 'config.json': read(id, 'config.json'), 'model.safetensors': read(id, 'model.safetensors'), 'tokenizer.json': read(id, 'tokenizer.json') });
    const all = Array.from({ length: model.config.nLayers }, (_, i) => i);
    const engine = await TextEngine.create(ort, 'wasm', model);
    for (const [key, exit] of [['full', undefined], ['exit2', 2], ['exit4', 4]] as const) {
      if (exit !== undefined) await engine.setPlan({ layers: all, exit });
      for (const [i, p] of golden.positions.entries()) {
        const got = await engine.logits(golden.tokens.slice(0, p + 1), { exit: exit !== undefined });
        expect(maxRelativeError(got, golden.logits[key][i]!), `${key} at position ${p}`).toBeLessThan(1e-4);
      }
    }
    await engine.dispose();
  });
});
