/**
 * Hostile safetensors headers: every lie a header can tell about the bytes behind it is a typed
 * BAD_MODEL error from readSafetensors, before any tensor is allocated.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../../core/errors.ts';
import { readHfModel, readWeightMap } from './model.ts';
import { readSafetensors, tensorAsFloat32 } from './safetensors.ts';
import { writeSafetensors } from './testing/folder.ts';

/** A file with exactly this header (any JSON value) and `dataBytes` zero bytes of data. */
function withHeader(header: unknown, dataBytes = 64, claimedLength?: bigint): ArrayBuffer {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, claimedLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out.buffer;
}

function badModel(fn: () => unknown, messagePart: string | RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(WhittleError);
  expect((caught as WhittleError).code).toBe('BAD_MODEL');
  expect((caught as WhittleError).message).toMatch(messagePart);
}

const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('readSafetensors on hostile headers', () => {
  it('reads an honest file (the baseline the cases below break)', () => {
    const f = readSafetensors(writeSafetensors({ a: { shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) } }));
    expect([...tensorAsFloat32(f, 'a', [2, 3])]).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('refuses a header length larger than the file, including u64 values past 2^53', () => {
    badModel(() => readSafetensors(withHeader({}, 0, 10_000n)), /runs past the end/);
    badModel(() => readSafetensors(withHeader({}, 0, 0xffff_ffff_ffff_fff0n)), /runs past the end/);
    badModel(() => readSafetensors(new ArrayBuffer(5)), /too short/);
  });

  it('refuses a header that is not a JSON object, or not UTF-8', () => {
    badModel(() => readSafetensors(withHeader([1, 2])), /not a JSON object/);
    badModel(() => readSafetensors(withHeader(null)), /not a JSON object/);
    const notUtf8 = new Uint8Array(withHeader({ a: 1 }));
    notUtf8[9] = 0xff;
    badModel(() => readSafetensors(notUtf8.buffer), /not UTF-8 JSON/);
  });

  it('refuses data offsets past the end of the file, reversed, negative or fractional', () => {
    badModel(() => readSafetensors(withHeader({ a: t('F32', [4], [0, 16]) }, 8)), /ends at data byte 16, the file holds 8/);
    badModel(() => readSafetensors(withHeader({ a: t('F32', [1], [8, 4]) })), /invalid data_offsets/);
    badModel(() => readSafetensors(withHeader({ a: t('F32', [1], [-4, 0]) })), /invalid data_offsets/);
    badModel(() => readSafetensors(withHeader({ a: t('F32', [1], [0, 4.5]) })), /invalid data_offsets/);
    badModel(() => readSafetensors(withHeader({ a: t('F32', [1], [0]) })), /malformed header entry/);
  });

  it('refuses a tensor whose shape x dtype does not match its byte range', () => {
    badModel(() => readSafetensors(withHeader({ a: t('F32', [3], [0, 16]) })), /F32\[3\] \(12 bytes\) but its data range holds 16/);
    badModel(() => readSafetensors(withHeader({ a: t('BF16', [2, 2], [0, 16]) })), /8 bytes\) but its data range holds 16/);
    badModel(() => readSafetensors(withHeader({ a: t('F32', [2, -2], [0, 16]) })), /not a list of non-negative integers/);
  });

  it('refuses a header claiming terabytes without allocating them', () => {
    // Plausible-looking offsets into data that is not there.
    badModel(() => readSafetensors(withHeader({ a: t('F32', [1_000_000, 1_000_000], [0, 4e12]) })), /ends at data byte 4000000000000/);
    // A shape whose element count overflows, over a small real range.
    badModel(() => readSafetensors(withHeader({ a: t('F32', [2 ** 40, 2 ** 40], [0, 16]) })), /too large for any file/);
    // A header length over the format's 100 MB limit (in a file big enough to hold it).
    const huge = new ArrayBuffer(100_000_016);
    new DataView(huge).setBigUint64(0, 100_000_001n, true);
    badModel(() => readSafetensors(huge), /over the format's/);
  });

  it('refuses overlapping tensors', () => {
    badModel(() => readSafetensors(withHeader({ a: t('F32', [4], [0, 16]), b: t('F32', [4], [8, 24]) })), /b overlaps a/);
  });

  it('rejects an index naming shards outside the folder, or no weight_map', () => {
    const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)).buffer as ArrayBuffer;
    const config = json({ architectures: ['LlamaForCausalLM'], hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, vocab_size: 4, max_position_embeddings: 8 });
    badModel(() => readHfModel({ 'config.json': config, 'model.safetensors.index.json': json({ weight_map: { 'model.norm.weight': '../../etc/passwd' } }) }), /not a plain relative file name/);
    badModel(() => readHfModel({ 'config.json': config, 'model.safetensors.index.json': json({ weight_map: { x: 'https://evil.example/x.safetensors' } }) }), /not a plain relative file name/);
    badModel(() => readHfModel({ 'config.json': config, 'model.safetensors.index.json': json({ metadata: {} }) }), /no weight_map/);
  });

  it('values nested 5,000 deep in a header or an index are BAD_MODEL, not a stack overflow while writing the message (fuzz finding)', () => {
    const deep = (n: number) => '['.repeat(n) + '1' + ']'.repeat(n);
    const header = `{"t":{"dtype":"F32","shape":[1],"data_offsets":[${deep(5000)},4]}}`;
    const bytes = new TextEncoder().encode(header);
    const file = new Uint8Array(8 + bytes.length + 4);
    new DataView(file.buffer).setBigUint64(0, BigInt(bytes.length), true);
    file.set(bytes, 8);
    badModel(() => readSafetensors(file.buffer), /invalid data_offsets \[2 items\]/);
    badModel(() => readWeightMap(JSON.parse(`{"weight_map":{"a":${deep(5000)}}}`)), /maps to \[1 items\]/);
  });
});

