/**
 * TextService's streamed variant (openVariantStream / nextVariantChunk: what a page pulls into
 * its store on the first load with `compress`), on the real stories-layerskip folder: the chunks
 * make the size announced up front and a file readers accept, and a model loaded from that file
 * gives the logits of the old first load (the source compressed in the worker, its stored form
 * kept for the export) bit for bit; the calls out of order are INVALID_ARGUMENT, a setting that
 * needs the whole model UNSUPPORTED, and no onnxruntime is started for any of it.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { VARIANT_FILE } from '../../models/compress/variant-name.ts';
import { readVariantInfo } from '../../models/compress/variant.ts';
import { joinParts } from '../../models/compress/testing/join-parts.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { TextService, type TextModelSource } from './service.ts';

const NAMES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const folder = (): TextModelSource => ({ format: 'hf', files: Object.fromEntries(NAMES.map((n) => [n, readLocalModelFile('stories-layerskip', n)])) });
const SOURCE = { id: 'stories-layerskip', revision: 'r1' };
const PROMPT = [1, 403, 407, 261, 378, 432];

async function pull(service: TextService): Promise<ArrayBuffer> {
  const parts: ArrayBuffer[] = [];
  for (let c = await service.nextVariantChunk(); c; c = await service.nextVariantChunk()) parts.push(c.slice().buffer);
  return joinParts(parts);
}

describe('TextService: a variant streamed out of the worker', () => {
  for (const setting of [{ linear: 'q8' }, { linear: 'q4', group: 32 }] as WeightsSetting[]) {
    it(`${setting.linear}: the size announced, a valid file, and a model on it = the old first load, bit for bit`, { timeout: 120_000 }, async () => {
      const producer = new TextService(); // never init(): no onnxruntime for compressing
      const { size } = await producer.openVariantStream(folder() as Exclude<TextModelSource, { format: 'variant' }>, setting, SOURCE, 'wasm');
      const file = await pull(producer);
      expect(file.byteLength).toBe(size);
      expect(readVariantInfo(file).info).toMatchObject({ setting, source: { ...SOURCE, format: 'hf' } });
      await expect(producer.nextVariantChunk()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' }); // closed at its end

      const fromStream = new TextService();
      await fromStream.init({ backend: 'wasm', numThreads: 1 });
      const names = ['config.json', 'tokenizer.json', 'tokenizer_config.json'];
      await fromStream.load({ format: 'variant', files: { [VARIANT_FILE]: new Blob([file]), ...Object.fromEntries(names.map((n) => [n, readLocalModelFile('stories-layerskip', n)])) } });
      const old = new TextService();
      await old.init({ backend: 'wasm', numThreads: 1 });
      await old.load(folder(), { compress: setting, keepVariant: true });
      expect(Array.from(await fromStream.logits(PROMPT))).toEqual(Array.from(await old.logits(PROMPT)));
      await fromStream.dispose();
      await old.dispose();
    });
  }

  it('asks in order: no stream open is INVALID_ARGUMENT; sparsity is UNSUPPORTED (the whole-model path); closing stops it', async () => {
    const service = new TextService();
    await expect(service.nextVariantChunk()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(service.openVariantStream(folder() as Exclude<TextModelSource, { format: 'variant' }>, { linear: 'q8', sparsity: { pattern: '2:4', method: 'magnitude' } }, SOURCE, 'wasm')).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await service.openVariantStream(folder() as Exclude<TextModelSource, { format: 'variant' }>, { linear: 'q8' }, SOURCE, 'wasm');
    expect((await service.nextVariantChunk())!.byteLength).toBeGreaterThan(0);
    await service.closeVariantStream();
    await expect(service.nextVariantChunk()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
