/**
 * On-device compression through the engine: `compress()` after loading and `compress` at load
 * give the same model; quality against the fp32 engine on held-out text (issue #13's goals: q8
 * within 1% perplexity, q4 group 32 within 10%); one way; abortable.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { HELD_OUT_PROMPTS } from '../../models/llama/testing/held-out-prompts.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromHf } from './model.ts';

const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const model = () => textModelFromHf(Object.fromEntries(FILES.map((f) => [f, readLocalModelFile('stories-layerskip', f)])));
const heldOut = HELD_OUT_PROMPTS.slice(0, 6).join(' ');

describe('TextEngine.compress on stories-layerskip', async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const fp32 = await TextEngine.create(ort, 'wasm', model());
  const base = (await fp32.perplexity(heldOut)).perplexity;
  const greedy = async (e: TextEngine) => (await collect(e)).slice(0, 24);
  const baseTokens = await greedy(fp32);

  it('q8 after loading: perplexity within 1% of fp32, reported as the weights setting, a second compress refused', async () => {
    const e = await TextEngine.create(ort, 'wasm', model());
    await e.compress({ linear: 'q8' });
    expect(e.weights).toEqual({ linear: 'q8' });
    const ppl = (await e.perplexity(heldOut)).perplexity;
    expect(Math.abs(ppl / base - 1)).toBeLessThan(0.01);
    const tokens = await greedy(e);
    expect(agreement(tokens, baseTokens)).toBeGreaterThanOrEqual(0.75);
    await expect(e.compress({ linear: 'q4' })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await e.dispose();
  });

  it('q4 group 32 at load equals q4 after loading, within 10% perplexity of fp32', async () => {
    const atLoad = await TextEngine.create(ort, 'wasm', model(), { compress: { linear: 'q4', group: 32 } });
    const later = await TextEngine.create(ort, 'wasm', model());
    await later.compress({ linear: 'q4', group: 32 });
    const a = await atLoad.logits([1, 403, 407, 261]);
    const b = await later.logits([1, 403, 407, 261]);
    expect(Array.from(a)).toEqual(Array.from(b));
    const ppl = (await atLoad.perplexity(heldOut)).perplexity;
    expect(Math.abs(ppl / base - 1)).toBeLessThan(0.1);
    await atLoad.dispose();
    await later.dispose();
  });

  it('an aborted compress leaves the fp32 model working', async () => {
    const e = await TextEngine.create(ort, 'wasm', model());
    await expect(e.compress({ linear: 'q8' }, { signal: AbortSignal.abort() })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(e.weights).toBeUndefined();
    expect(await greedy(e)).toEqual(baseTokens);
    await e.dispose();
  });
});

async function collect(e: TextEngine): Promise<number[]> {
  for await (const ev of e.generate('Once upon a time', { maxTokens: 24, greedy: true })) if (ev.type === 'done') return ev.tokens;
  return [];
}

function agreement(a: number[], b: number[]): number {
  let same = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] === b[i]) same++;
  return same / Math.max(a.length, b.length);
}
