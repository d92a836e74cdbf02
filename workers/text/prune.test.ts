import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { readLlama2cCheckpoint } from '../../models/import/llama2c/checkpoint.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { LlamaReference, referenceGreedy } from '../../models/reference/llama-ref.ts';
import { planPerplexity } from '../../models/reference/scoring-ref.ts';
import { DEFAULT_CALIBRATION_TEXT } from './calibration.ts';
import { TextService } from './service.ts';

const checkpoint = () => readLocalModelFile('stories260K', 'stories260K.bin');
const tokenizer = () => readLocalModelFile('stories260K', 'tok512.bin');

describe('TextService.prune on stories260K', async () => {
  const service = new TextService();
  await service.init({ backend: 'wasm', numThreads: 1 });
  const loaded = await service.load({ format: 'llama2c', checkpoint: checkpoint(), tokenizer: tokenizer() });

  it('decode inverts encode, and refuses an id outside the vocabulary (typed)', () => {
    const text = 'Tom and Lily went to the park.';
    expect(service.decode(service.encode(text))).toBe(text);
    expect(() => service.decode([512])).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }) as unknown as Error);
    expect(() => service.decode([-1])).toThrow(WhittleError);
  });

  it('the built-in calibration text is a few hundred tokens', () => {
    const n = service.encode(DEFAULT_CALIBRATION_TEXT).length;
    expect(n).toBeGreaterThan(300);
    expect(n).toBeLessThan(1000);
  });

  it('a 1-block prune compiles a 4-layer plan and generation still works (matching the reference)', async () => {
    expect(loaded.plan.layers).toEqual([0, 1, 2, 3, 4]);
    const result = await service.prune({ remove: 1 });
    expect(result.plan.layers).toHaveLength(4);
    expect(result.removed).toHaveLength(1);
    const dropped = result.removed[0]!;
    expect(dropped).toBeGreaterThan(0); // keepFirstLast by default
    expect(dropped).toBeLessThan(4);
    expect(result.plan.layers).toEqual([0, 1, 2, 3, 4].filter((l) => l !== dropped));
    expect(result.info.plan).toEqual(result.plan);
    // default criterion 'perplexity': the dropped block is the cheapest one to lose
    const p = result.scores.perplexity;
    expect(p[dropped]).toBe(Math.min(p[1]!, p[2]!, p[3]!));
    expect(result.scores.positions).toBe(1 + service.encode(DEFAULT_CALIBRATION_TEXT).length);

    const done = await service.complete([1, 403, 407], { maxTokens: 16, greedy: true, stopTokens: [] });
    expect(done.tokens).toHaveLength(16);
    expect(done.stats.plan.layers).toEqual(result.plan.layers);
    const { config, weights } = readLlama2cCheckpoint(checkpoint());
    expect(done.tokens).toEqual(referenceGreedy(new LlamaReference(config, weights, result.plan), [1, 403, 407], 16));
    const text = await service.complete('Once upon a time', { maxTokens: 24, greedy: true });
    expect(text.text.length).toBeGreaterThan(0);
  });

  it('criterion, calibration ids and keepFirstLast are honoured', async () => {
    const ids = [1, ...service.encode('Tom and Lily went to the park. They saw a big dog and a little cat. They were happy.')];
    const r = await service.prune({ remove: 2, criterion: 'influence', calibration: ids, keepFirstLast: false });
    expect(r.scores.positions).toBe(ids.length);
    const order = [0, 1, 2, 3, 4].sort((a, b) => r.scores.influence[a]! - r.scores.influence[b]! || b - a);
    expect(r.removed).toEqual(order.slice(0, 2));
    expect(r.plan.layers).toHaveLength(3);
    const done = await service.complete([1], { maxTokens: 8, greedy: true, stopTokens: [] });
    expect(done.tokens).toHaveLength(8);
  });

  it('perplexity under a pruned plan matches the reference, and re-pruning reuses the scores', async () => {
    const text = 'The little dog ran to the park. He saw a ball and played with it all day.';
    const ids = [1, ...service.encode(text)];
    const first = await service.prune({ remove: 1 });
    const again = await service.prune({ remove: 2 });
    expect(again.scores).toBe(first.scores); // same calibration: no second scoring pass
    const { config, weights } = readLlama2cCheckpoint(checkpoint());
    const want = planPerplexity(config, weights, again.plan, [ids]);
    const got = await service.perplexity(text);
    expect(got.predictions).toBe(want.predictions);
    expect(Math.abs(got.perplexity - want.perplexity) / want.perplexity).toBeLessThan(1e-4);
    const full = await service.setPlan({ layers: [0, 1, 2, 3, 4] });
    expect(full.plan.layers).toHaveLength(5);
    expect((await service.perplexity(ids)).perplexity).toBeLessThan(got.perplexity);
  });

  it('refuses to remove more blocks than allowed, and leaves the plan alone', async () => {
    const before = (await service.setPlan({ layers: [0, 1, 2, 3, 4] })).plan;
    for (const opts of [{ remove: 4 }, { remove: 5, keepFirstLast: false }, { remove: -1 }]) {
      const err = await service.prune(opts).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WhittleError);
      expect((err as WhittleError).code).toBe('INVALID_ARGUMENT');
    }
    const done = await service.complete([1], { maxTokens: 4, greedy: true, stopTokens: [] });
    expect(done.stats.plan).toEqual(before);
    await service.dispose();
  });
});
