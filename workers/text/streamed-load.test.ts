/**
 * Loading a Hugging Face folder from Blobs, the way the worker gets the store's files: the
 * weights stream layer by layer (models/import/hf/open-model.ts -> prepareWeightsFrom), the engine
 * lets its fp32 prepared copy go once the sessions hold the weights, and every later compile
 * (plan change, pruning's scoring, exit calibration, compression) re-reads the files. Each must
 * give what the in-memory load gives.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { reshardHfFolder } from '../../models/import/hf/testing/folder.ts';
import type { HfModelFiles } from '../../models/import/hf/model.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { openTextModelFromHf, textModelFromHf } from './model.ts';

const ID = 'stories-layerskip';
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const inMemory: HfModelFiles = Object.fromEntries(FILES.map((f) => [f, readLocalModelFile(ID, f)]));
const asBlobs = (files: HfModelFiles) => Object.fromEntries(Object.entries(files).map(([n, b]) => [n, new Blob([b])]));
const PROMPT = 'Once upon a time, there was a little girl';

describe('a model streamed from Blobs', async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const held = await TextEngine.create(ort, 'wasm', textModelFromHf(inMemory));
  const tokens = async (e: TextEngine, maxTokens = 24) => {
    const out: number[] = [];
    for await (const ev of e.generate(PROMPT, { maxTokens, greedy: true })) if (ev.type === 'token') out.push(ev.token);
    return out;
  };
  const expected = await tokens(held);
  expect(expected).toHaveLength(24);

  it('gives the in-memory load its logits and tokens, and holds no prepared copy after compiling', async () => {
    const streamed = await TextEngine.create(ort, 'wasm', await openTextModelFromHf(asBlobs(inMemory)));
    expect(held.heldWeightBytes).toBeGreaterThan(9_000_000); // 2.36M params in fp32, plus RoPE tables
    expect(streamed.heldWeightBytes).toBe(0);
    const ids = [1, 403, 407, 261, 378];
    expect(await streamed.logits(ids)).toEqual(await held.logits(ids));
    expect(await tokens(streamed)).toEqual(expected);
    await streamed.dispose();
  });

  it('re-reads its files for plan changes, pruning, exit calibration and compression, with the in-memory results', async () => {
    const streamed = await TextEngine.create(ort, 'wasm', await openTextModelFromHf(asBlobs(inMemory)));
    const mem = await TextEngine.create(ort, 'wasm', textModelFromHf(inMemory));
    await streamed.setPlan({ layers: [0, 1, 2, 4, 5, 7] });
    await mem.setPlan({ layers: [0, 1, 2, 4, 5, 7] });
    expect(await tokens(streamed)).toEqual(await tokens(mem));
    expect(streamed.heldWeightBytes).toBe(0);

    const calibration = 'The cat sat on the mat. The dog ran to the park and played with a ball.';
    const [a, b] = [await streamed.scoreBlocks(calibration), await mem.scoreBlocks(calibration)];
    expect(a.perplexity).toEqual(b.perplexity);

    await streamed.setPlan();
    await mem.setPlan();
    const [ca, cb] = [await streamed.calibrateExits(), await mem.calibrateExits()];
    const { ms: _a, ...profileA } = ca.profile; // ms: how long profiling took
    const { ms: _b, ...profileB } = cb.profile;
    expect(profileA).toEqual(profileB);

    await streamed.compress({ linear: 'q8' });
    await mem.compress({ linear: 'q8' });
    expect(await tokens(streamed)).toEqual(await tokens(mem));
    // Compressed weights are held (a quarter of fp32), so re-planning needs no re-quantization.
    expect(streamed.heldWeightBytes).toBe(mem.heldWeightBytes);
    await Promise.all([streamed.dispose(), mem.dispose()]);
  });

  it('reads a BF16 folder in three shards tensor by tensor, as the in-memory reader does', async () => {
    const sharded = reshardHfFolder(inMemory, { dtype: 'BF16', shards: 3 }) as HfModelFiles;
    const streamed = await TextEngine.create(ort, 'wasm', await openTextModelFromHf(asBlobs(sharded)));
    const mem = await TextEngine.create(ort, 'wasm', textModelFromHf(sharded));
    const ids = [1, 403, 407, 261, 378];
    expect(await streamed.logits(ids)).toEqual(await mem.logits(ids));
    await Promise.all([streamed.dispose(), mem.dispose()]);
  });

  it('reads single embedding rows and ranges of rows from storage, as the whole table has them', async () => {
    const sharded = reshardHfFolder(inMemory, { dtype: 'BF16', shards: 3 }) as HfModelFiles;
    const { config, weights: reader } = await openTextModelFromHf(asBlobs(sharded));
    const table = await reader.tokenEmbedding();
    const ids = [0, 7, 7, config.vocabSize - 1];
    const rows = await reader.embeddingRows!(ids);
    ids.forEach((id, s) => expect(rows.subarray(s * config.dim, (s + 1) * config.dim)).toEqual(table.subarray(id * config.dim, (id + 1) * config.dim)));
    await expect(reader.embeddingRows!([config.vocabSize])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    // A range of rows in one read (a tied head is built from them), the last chunk short.
    const { dim, vocabSize } = config;
    expect(await reader.embeddingRange!(0, vocabSize)).toEqual(table);
    expect(await reader.embeddingRange!(vocabSize - 3, 3)).toEqual(table.subarray((vocabSize - 3) * dim));
    for (const [first, count] of [[vocabSize - 2, 3], [-1, 2], [0, 0], [1.5, 1]]) await expect(reader.embeddingRange!(first!, count!)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('fails at open, before reading any weight, when a tensor is missing or misshapen', async () => {
    const config = JSON.parse(new TextDecoder().decode(inMemory['config.json'])) as Record<string, unknown>;
    const wider = { ...inMemory, 'config.json': new TextEncoder().encode(JSON.stringify({ ...config, intermediate_size: 999 })).buffer as ArrayBuffer };
    await expect(openTextModelFromHf(asBlobs(wider))).rejects.toMatchObject({ code: 'BAD_MODEL', message: expect.stringMatching(/gate_proj.*shape/) });
    const deeper = { ...inMemory, 'config.json': new TextEncoder().encode(JSON.stringify({ ...config, num_hidden_layers: 9 })).buffer as ArrayBuffer };
    await expect(openTextModelFromHf(asBlobs(deeper))).rejects.toMatchObject({ code: 'BAD_MODEL', message: expect.stringMatching(/missing tensor model\.layers\.8\./) });
  });
});
