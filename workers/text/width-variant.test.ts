/**
 * Cached width variants (issue #14): a width-pruned plan's narrowed fp32 blocks (with FLAP's
 * compensation biases) written as a variant (format 3) and loaded back compile the same graphs
 * as the fresh prune, so the logits are bit-identical, and the reload runs no calibration pass
 * (no scoring, no compensation means): the engine counts them. Through the engine (stories260K,
 * llama2.c) and through the worker service (stories-layerskip, a depth + width plan with an exit).
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import { readVariant, VARIANT_FILE, writeVariant } from '../../models/compress/variant.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { TextService } from './service.ts';
import { joinParts } from '../../models/compress/testing/join-parts.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const stories260K = () => textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin'));
const prompt = [1, 403, 407, 261];
const code = async (p: Promise<unknown>) => ((await p.catch((e: unknown) => e)) as WhittleError).code;

describe('width variants through the engine (stories260K)', () => {
  for (const method of ['flap', 'wanda-sp'] as const) {
    it(`${method} 20% over a depth-pruned plan: the reload's logits equal the fresh prune's, with no calibration pass and no source weights`, async () => {
      const fresh = await TextEngine.create(ort, 'wasm', stories260K());
      await fresh.setPlan({ layers: [0, 1, 2, 4] });
      const { plan } = await fresh.pruneWidth({ ratio: 0.2, method });
      expect(fresh.widthCalibrationPasses).toBe(1);
      const want = await fresh.logits(prompt);
      const { stored, width } = await fresh.widthVariant();
      expect(fresh.widthCalibrationPasses).toBe(1); // sliced with the pruning's own means
      const file = joinParts(writeVariant(stored, { linear: 'f32' }, { id: 'stories260K', revision: 'r', format: 'llama2c' }, width));
      await fresh.dispose();

      const { prepared, info } = readVariant(file);
      expect(info.version).toBe(3);
      expect(info.width).toEqual({ plan: plan.width, layers: [0, 1, 2, 4] });
      // Only the plan's blocks that keep fewer units are narrowed (FLAP's ratios are adaptive: a block may keep all); FLAP's carry their compensation biases.
      const c = info.config;
      const narrowed = [0, 1, 2, 3, 4].map((i) => [0, 1, 2, 4].includes(i) && (plan.width!.kvHeads[i]!.length < c.nKvHeads || plan.width!.ffn[i]!.length < c.hiddenDim));
      expect(narrowed.filter(Boolean).length).toBeGreaterThan(0);
      expect(prepared.layers.map((l) => l.hidden !== undefined)).toEqual(narrowed);
      expect(prepared.layers.every((l) => (l.woBias !== undefined) === (method === 'flap' && l.hidden !== undefined))).toBe(true);
      const { weights: _source, ...model } = stories260K();
      const reloaded = await TextEngine.fromStored(ort, 'wasm', model, prepared, info.setting, { width: info.width! });
      expect(reloaded.plan).toEqual({ layers: [0, 1, 2, 4], width: plan.width });
      expect(await reloaded.logits(prompt)).toEqual(want);
      // Plans keep the stored width over a subset of its blocks; pruning again needs the full model.
      await reloaded.setPlan({ layers: [0, 1, 4], width: plan.width! });
      expect((await reloaded.logits(prompt)).length).toBe(512);
      expect(await code(reloaded.setPlan({ layers: [0, 1, 2, 3, 4] }))).toBe('UNSUPPORTED');
      expect(await code(reloaded.setPlan({ layers: [0, 1, 2, 3, 4], width: plan.width! }))).toBe('UNSUPPORTED'); // block 3 is not narrowed in the file
      expect(await code(reloaded.pruneWidth({ ratio: 0.1, method }))).toBe('UNSUPPORTED');
      expect(reloaded.widthCalibrationPasses).toBe(0);
      await reloaded.dispose();
    });
  }

  it('a width variant of a plan without width, or of compressed weights, is refused', async () => {
    const engine = await TextEngine.create(ort, 'wasm', stories260K());
    expect(await code(engine.widthVariant())).toBe('INVALID_ARGUMENT');
    await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    await engine.compress({ linear: 'q8' });
    expect(await code(engine.widthVariant())).toBe('UNSUPPORTED');
    await engine.dispose();
  });

  it('the writer refuses a width that is not the layers the weights have', async () => {
    const engine = await TextEngine.create(ort, 'wasm', stories260K());
    await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
    const { stored, width } = await engine.widthVariant();
    await engine.dispose();
    const other = { ...width, plan: { ...width.plan, ffn: width.plan.ffn.map((f) => f.slice(1)) } };
    expect(() => writeVariant(stored, { linear: 'f32' }, { id: 'x', revision: 'r', format: 'llama2c' }, other)).toThrow(/FFN channels/);
    expect(() => writeVariant(stored, { linear: 'f32' }, { id: 'x', revision: 'r', format: 'llama2c' })).toThrow(/FFN channels/);
  });
});

describe('width variants through the worker service (stories-layerskip, FLAP 20% over 7 blocks with an exit)', () => {
  const names = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json'];
  const files = () => Object.fromEntries(names.map((n) => [n, readLocalModelFile('stories-layerskip', n)]));
  const tokens = [1, 403, 407, 300, 19];

  it('exportWidthVariant -> a variant load with the saved plan: same logits and tokens, smaller than the source', async () => {
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    await maker.load({ format: 'hf', files: files() }, { plan: { layers: [0, 1, 2, 3, 4, 5, 7], exit: 3 } });
    const { plan } = await maker.pruneWidth({ width: 0.2, method: 'flap' });
    const want = await maker.logits(tokens);
    const wantTokens = (await maker.complete('Once upon a time', { maxTokens: 12, greedy: true })).tokens;
    const variant = joinParts(await maker.exportWidthVariant({ id: 'stories-layerskip', revision: 'r' }));
    await maker.dispose();
    expect(variant.byteLength).toBeLessThan(readLocalModelFile('stories-layerskip', 'model.safetensors').byteLength * 0.85);

    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    const { 'model.safetensors': _source, ...others } = files();
    const info = await user.load({ format: 'variant', files: { ...others, [VARIANT_FILE]: variant } }, { plan });
    expect(info.plan).toEqual(plan);
    expect(await user.logits(tokens)).toEqual(want);
    expect((await user.complete('Once upon a time', { maxTokens: 12, greedy: true })).tokens).toEqual(wantTokens);
    await user.dispose();
  });
});

describe('a compressed load of a width plan (what Whittle.text does with compress and a saved width plan)', () => {
  it('narrows, then compresses, and keeps a variant of the narrowed compressed blocks that reloads to the same logits', async () => {
    const source = () => ({ format: 'llama2c' as const, checkpoint: readLocalModelFile('stories260K', 'stories260K.bin'), tokenizer: readLocalModelFile('stories260K', 'tok512.bin'), name: 'stories260K.bin' });
    const maker = new TextService();
    await maker.init({ backend: 'wasm', numThreads: 1 });
    await maker.load(source());
    const { plan } = await maker.pruneWidth({ width: 0.2, method: 'flap' });
    await maker.dispose();
    const setting = { linear: 'q4' as const, group: 32 as const };

    const plain = new TextService();
    await plain.init({ backend: 'wasm', numThreads: 1 });
    await plain.load(source(), { plan, compress: setting });
    const want = await plain.logits(prompt);
    await plain.dispose();

    const keeper = new TextService();
    await keeper.init({ backend: 'wasm', numThreads: 1 });
    const info = await keeper.load(source(), { plan, compress: setting, keepVariant: true });
    expect(info.plan).toEqual(plan);
    expect(info.weights).toEqual(setting);
    expect(await keeper.logits(prompt)).toEqual(want);
    const file = joinParts(keeper.exportVariant({ id: 'stories260K', revision: 'r' }));
    await keeper.dispose();
    const read = readVariant(file);
    expect(read.info.version).toBe(3);
    expect(read.info.setting).toEqual(setting);
    expect(read.info.width?.plan).toEqual(plan.width);

    const user = new TextService();
    await user.init({ backend: 'wasm', numThreads: 1 });
    const again = await user.load({ format: 'variant', files: { [VARIANT_FILE]: file, 'tok512.bin': readLocalModelFile('stories260K', 'tok512.bin') } }, { plan });
    expect(again.plan).toEqual(plan);
    expect(again.weights).toEqual(setting);
    expect(await user.logits(prompt)).toEqual(want);
    await user.dispose();
  });
});

describe('hostile width variants: typed errors before anything is decoded', async () => {
  const engine = await TextEngine.create(ort, 'wasm', stories260K());
  await engine.pruneWidth({ ratio: 0.2, method: 'flap' });
  const { stored, width } = await engine.widthVariant();
  await engine.dispose();
  const good = joinParts(writeVariant(stored, { linear: 'f32' }, { id: 'stories260K', revision: 'r', format: 'llama2c' }, width));
  const headerLen = Number(new DataView(good).getBigUint64(0, true));
  const edit = (f: (meta: Record<string, string>) => void): ArrayBuffer => {
    const h = JSON.parse(new TextDecoder().decode(new Uint8Array(good, 8, headerLen))) as { __metadata__: Record<string, string> };
    f(h.__metadata__);
    const json = new TextEncoder().encode(JSON.stringify(h));
    const out = new Uint8Array(8 + json.byteLength + good.byteLength - 8 - headerLen);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
    out.set(json, 8);
    out.set(new Uint8Array(good, 8 + headerLen), 8 + json.byteLength);
    return out.buffer;
  };
  const editWidth = (f: (w: { kvHeads: number[][]; ffn: number[][]; bias: boolean; layers: number[] }) => void) =>
    edit((m) => {
      const w = JSON.parse(m.width!) as { kvHeads: number[][]; ffn: number[][]; bias: boolean; layers: number[] };
      f(w);
      m.width = JSON.stringify(w);
    });
  const error = (buffer: ArrayBuffer): string => {
    try {
      readVariant(buffer);
    } catch (err) {
      expect(err).toBeInstanceOf(WhittleError);
      return `${(err as WhittleError).code}: ${(err as WhittleError).message}`;
    }
    return 'no error';
  };
  it('the good file reads', () => expect(error(good)).toBe('no error'));
  it('a width whose kept channels are not the tensors\' shapes', () => expect(error(editWidth((w) => (w.ffn[0] = w.ffn[0]!.slice(1))))).toMatch(/^BAD_MODEL: .*layers\.0\..* has shape/));
  it('a width without its biases', () => expect(error(editWidth((w) => (w.bias = false)))).toMatch(/^BAD_MODEL: .*unexpected tensor .*_bias/));
  it('kept indices out of range or unsorted', () => {
    expect(error(editWidth((w) => (w.ffn[1] = [5, 2])))).toMatch(/^BAD_MODEL: .*width: .*ascending distinct/);
    expect(error(editWidth((w) => (w.kvHeads[0] = [99])))).toMatch(/^BAD_MODEL: .*width: .*ascending distinct/);
  });
  it('narrowed blocks that are not blocks', () => expect(error(editWidth((w) => (w.layers = [0, 0, 7])))).toMatch(/^BAD_MODEL: .*width.layers must be distinct/));
  it('a width in a file of version 2, and a version 3 file without one', () => {
    expect(error(edit((m) => (m.whittle_version = '2')))).toMatch(/^BAD_MODEL: .*version 2 file/);
    expect(error(edit((m) => delete m.width))).toMatch(/^BAD_MODEL: .*version 3 file/);
  });
  it('a newer version is UNSUPPORTED', () => expect(error(edit((m) => (m.whittle_version = '4')))).toMatch(/^UNSUPPORTED: /));
});
