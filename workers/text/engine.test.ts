import { describe, expect, it } from 'vitest';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { prepareWeights } from '../../models/llama/prepare.ts';
import { LlamaReference, referenceGreedy } from '../../models/reference/llama-ref.ts';
import { loadOrt } from '../ort/runtime.ts';
import type { TextEvent } from '../../core/text-types.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';

/** run.c's greedy output for stories260K from BOS (token 1), 20 steps. */
const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const bin = () => readLocalModelFile('stories260K', 'stories260K.bin');
const tok = () => readLocalModelFile('stories260K', 'tok512.bin');

async function collect(it: AsyncIterable<TextEvent>): Promise<TextEvent[]> {
  const out: TextEvent[] = [];
  for await (const ev of it) out.push(ev);
  return out;
}
const done = (evs: TextEvent[]) => {
  const last = evs.at(-1)!;
  if (last.type !== 'done') throw new Error('no done event');
  return last;
};

describe('TextEngine on stories260K', async () => {
  const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()));

  it.each(['onnx', 'gqa', 'plain'] as const)('greedy from BOS gives run.c tokens (%s attention)', async (attention) => {
    const e = attention === engine.attention ? engine : await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()), { attention });
    const evs = await collect(e.generate([1], { maxTokens: 20, greedy: true, stopTokens: [] }));
    expect(evs.filter((x) => x.type === 'token').map((x) => (x as { token: number }).token)).toEqual(GOLDEN);
    const d = done(evs);
    expect(d.tokens).toEqual(GOLDEN);
    expect(d.stats.generatedTokens).toBe(20);
    expect(d.stats.stopReason).toBe('max-tokens');
    expect(d.stats.decodeTokensPerSecond).toBeGreaterThan(0);
    expect(d.text).toBe(e.tokenizer.decode(GOLDEN));
    if (e !== engine) await e.dispose();
  });

  it('streams text whose pieces join to the decoded tokens', async () => {
    const evs = await collect(engine.generate('Once upon a time', { maxTokens: 30, greedy: true }));
    const d = done(evs);
    const streamed = evs.flatMap((x) => (x.type === 'token' ? [x.text] : [])).join('');
    expect(streamed + d.tail).toBe(d.text);
    // The text after the prompt's, as the tokenizer decodes them together (streamer.test.ts has the cases).
    const promptIds = [1, ...engine.tokenizer.encode('Once upon a time')];
    expect(d.text).toBe(engine.tokenizer.decode([...promptIds, ...d.tokens]).slice('Once upon a time'.length));
    expect(d.stats.promptTokens).toBe(promptIds.length);
  });

  it('setPlan recompiles from loaded weights: skipping a block matches the reference', async () => {
    const { config, weights } = readLlama2cCheckpoint(bin());
    await engine.setPlan({ layers: [0, 1, 3, 4] });
    const d = done(await collect(engine.generate([1, 403, 407], { maxTokens: 12, greedy: true, stopTokens: [] })));
    expect(d.tokens).toEqual(referenceGreedy(new LlamaReference(config, weights, { layers: [0, 1, 3, 4] }), [1, 403, 407], 12));
    await engine.setPlan();
  });

  it('decodes through the early exit like the reference exit path', async () => {
    const { config, weights } = readLlama2cCheckpoint(bin());
    await engine.setPlan({ layers: [0, 1, 2, 3, 4], exit: 3 });
    const d = done(await collect(engine.generate([1], { maxTokens: 10, greedy: true, exit: true, stopTokens: [] })));
    const ref = new LlamaReference(config, weights, { layers: [0, 1, 2, 3, 4], exit: 3 });
    const want: number[] = [];
    let logits = ref.forward(1, 0, { exit: true });
    for (let i = 0; i < 10; i++) {
      let best = 0;
      for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[best]!) best = j;
      want.push(best);
      logits = ref.forward(best, i + 1, { exit: true });
    }
    expect(d.tokens).toEqual(want);
    // the full path of the same plan is still the full model
    const full = done(await collect(engine.generate([1], { maxTokens: 20, greedy: true, stopTokens: [] })));
    expect(full.tokens).toEqual(GOLDEN);
    await engine.setPlan();
  });

  it('cuts at a stop string without emitting it', async () => {
    const free = done(await collect(engine.generate([1], { maxTokens: 20, greedy: true, stopTokens: [] })));
    const stop = free.text.slice(10, 14);
    const evs = await collect(engine.generate([1], { maxTokens: 20, greedy: true, stopTokens: [], stopStrings: [stop] }));
    const d = done(evs);
    expect(d.stats.stopReason).toBe('stop-string');
    expect(d.text).toBe(free.text.slice(0, free.text.indexOf(stop)));
    expect(evs.flatMap((x) => (x.type === 'token' ? [x.text] : [])).join('')).toBe(d.text);
    expect(d.tail).toBe('');
  });

  it('samples reproducibly with a seed', async () => {
    const opts = { maxTokens: 15, temperature: 0.9, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 7 };
    const a = done(await collect(engine.generate('Lily', opts)));
    const b = done(await collect(engine.generate('Lily', opts)));
    expect(a.tokens).toEqual(b.tokens);
    const c = done(await collect(engine.generate('Lily', { ...opts, seed: 8 })));
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it('stops within one step on abort and can generate again', async () => {
    const ac = new AbortController();
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const ev of engine.generate([1], { maxTokens: 50, greedy: true, signal: ac.signal, stopTokens: [] })) {
          if (ev.type === 'token') seen.push(ev.token);
          if (seen.length === 3) ac.abort();
        }
      })(),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(seen).toHaveLength(3);
    const d = done(await collect(engine.generate([1], { maxTokens: 20, greedy: true, stopTokens: [] })));
    expect(d.tokens).toEqual(GOLDEN);
  });

  it('generateEach delivers the same events through a callback, and abort() stops it', async () => {
    const seen: TextEvent[] = [];
    const d = await engine.generateEach([1], { maxTokens: 20, greedy: true, stopTokens: [] }, (ev) => void seen.push(ev));
    expect(d.tokens).toEqual(GOLDEN);
    expect(seen.at(-1)).toBe(d);
    const partial: number[] = [];
    await expect(
      engine.generateEach([1], { maxTokens: 50, greedy: true, stopTokens: [] }, (ev) => {
        if (ev.type === 'token') partial.push(ev.token);
        if (partial.length === 2) engine.abort();
      }),
    ).rejects.toMatchObject({ code: 'ABORTED' });
    expect(partial).toEqual(GOLDEN.slice(0, 2));
  });

  it('rejects a prompt longer than the context', async () => {
    const ids = Array.from({ length: engine.config.maxSeqLen + 1 }, () => 300);
    await expect(collect(engine.generate(ids, { maxTokens: 1 }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('rejects a bad plan and an exit request without an exit', async () => {
    await expect(engine.setPlan({ layers: [0, 7] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(collect(engine.generate([1], { exit: true }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('bad model input', () => {
  it('truncated checkpoint -> BAD_MODEL', () => {
    expect(() => textModelFromLlama2c(bin().slice(0, 500_000), tok())).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
  it('missing tokenizer -> BAD_MODEL', () => {
    expect(() => textModelFromLlama2c(bin(), null)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
  it('config/weights shape mismatch -> BAD_MODEL', () => {
    const { config, weights } = readLlama2cCheckpoint(bin());
    expect(() => prepareWeights({ ...config, hiddenDim: config.hiddenDim + 8 }, weights)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    expect(() => prepareWeights({ ...config, nLayers: 4 }, weights)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
});

describe('self-speculative decoding', async () => {
  const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()), { plan: { layers: [0, 1, 2, 3, 4], exit: 2 } });

  it.each([1, 3, 6])('greedy output with draft %i equals full-depth greedy (run.c tokens)', async (draft) => {
    const d = done(await collect(engine.generate([1], { maxTokens: 20, greedy: true, stopTokens: [], speculate: { draft } })));
    expect(d.tokens).toEqual(GOLDEN);
    const s = d.stats.speculation!;
    expect(s.drafted).toBeGreaterThan(0);
    expect(s.accepted).toBeLessThanOrEqual(s.drafted);
  });

  it('matches full-depth greedy on a longer text prompt, up to the context end', async () => {
    const full = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(bin(), tok()));
    const prompt = 'Once upon a time, there was a little dog named Max.';
    const want = done(await collect(full.generate(prompt, { maxTokens: 600, greedy: true, stopTokens: [] })));
    const got = done(await collect(engine.generate(prompt, { maxTokens: 600, greedy: true, stopTokens: [], speculate: { draft: 4 } })));
    expect(got.stats.stopReason).toBe('context');
    expect(got.tokens).toEqual(want.tokens);
    expect(got.text).toBe(want.text);
    await full.dispose();
  });

  it('rejects bad speculation settings with INVALID_ARGUMENT', async () => {
    await expect(collect(engine.generate([1], { greedy: true, speculate: { draft: 0 } }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(collect(engine.generate([1], { greedy: true, speculate: { exit: 5 } }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(collect(engine.generate([1], { greedy: true, exit: true, speculate: {} }))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(engine.plan).toEqual({ layers: [0, 1, 2, 3, 4], exit: 2 }); // nothing recompiled by a refused call
  });
});
