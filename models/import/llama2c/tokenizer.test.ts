import { describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../workers/text/tokenizer.ts';
import { readLocalModelFile } from '../../local.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer, type Llama2cTokenizer } from './tokenizer.ts';

/** run.c's encode(), transcribed: dummy prefix, code points with byte fallback, best-score merges. */
function llama2cEncode(tok: Llama2cTokenizer, text: string): number[] {
  const ids = new Map(tok.pieces.map((p, i) => [p, i] as const));
  const out: number[] = [];
  if (text !== '') out.push(ids.get(' ')!);
  for (const ch of text) {
    const id = ids.get(ch);
    if (id !== undefined) out.push(id);
    else for (const b of new TextEncoder().encode(ch)) out.push(b + 3);
  }
  for (;;) {
    let best = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < out.length - 1; i++) {
      const id = ids.get(tok.pieces[out[i]!]! + tok.pieces[out[i + 1]!]!);
      if (id !== undefined && tok.scores[id]! > best) {
        best = tok.scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    out.splice(bestIdx, 2, bestId);
  }
  return out;
}

const raw = readLlama2cTokenizer(readLocalModelFile('stories260K', 'tok512.bin'), 512);
const tok = TextTokenizer.fromJson(llama2cTokenizerToHf(raw));

describe('llama2.c tokenizer -> tokenizer.json', () => {
  it.each([
    'Once upon a time',
    'Lily and Tom went to the park. They saw a big, red ball!',
    'Hello\nworld  with  spaces',
    'naïve café — “quotes” 日本',
    '',
  ])('encodes %j exactly like run.c', (text) => {
    expect(tok.encode(text)).toEqual(llama2cEncode(raw, text));
  });

  it('decodes byte-fallback pieces to UTF-8 and strips the dummy-prefix space', () => {
    const text = 'naïve café 日本 story';
    expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it('streams text without splitting multi-byte characters', () => {
    const ids = tok.encode('a 日本 b');
    const stream = tok.streamDecoder();
    const parts = ids.map((id) => stream.push(id));
    expect(parts.join('')).toBe('a 日本 b');
    expect(parts.every((p) => !p.includes('\uFFFD'))).toBe(true);
  });

  it('rejects a truncated tokenizer.bin', () => {
    const buf = readLocalModelFile('stories260K', 'tok512.bin').slice(0, 1000);
    expect(() => readLlama2cTokenizer(buf, 512)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });

  it('rejects JSON that is not a tokenizer', () => {
    expect(() => TextTokenizer.fromJson({ hello: 1 })).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });

  // Fuzz findings (scripts/fuzz/targets/llama2c-tokenizer.ts), minimized.
  it('refuses a vocabSize that is not a count, or that the file cannot hold, before allocating for it', () => {
    const buf = readLocalModelFile('stories260K', 'tok512.bin');
    for (const bad of [NaN, -1, 0.5, 1e300]) {
      expect(() => readLlama2cTokenizer(buf, bad)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    // 6 KB cannot hold 2^30 records of 8 bytes or more: refused, not a 4 GiB Float32Array first.
    expect(() => readLlama2cTokenizer(buf, 2 ** 30)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    expect(() => readLlama2cTokenizer(new Uint8Array([64, 0, 0, 0]).buffer, 1)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });

  /** tokenizer.bin bytes for `pieces` (score = index). */
  const tokenizerBin = (pieces: string[]): ArrayBuffer => {
    const enc = pieces.map((p) => new TextEncoder().encode(p));
    const out = new DataView(new ArrayBuffer(4 + enc.reduce((a, b) => a + 8 + b.length, 0)));
    out.setInt32(0, Math.max(...enc.map((b) => b.length)), true);
    let at = 4;
    enc.forEach((b, i) => {
      out.setFloat32(at, i, true);
      out.setInt32(at + 4, b.length, true);
      new Uint8Array(out.buffer).set(b, at + 8);
      at += 8 + b.length;
    });
    return out.buffer;
  };

  it("keeps pieces named like Object.prototype's keys ('constructor', '__proto__') in the vocabulary", () => {
    const pieces = ['<unk>', '\n<s>\n', '\n</s>\n', 'c', 'onstructor', 'constructor', '__proto__', '__', 'proto__'];
    const json = llama2cTokenizerToHf(readLlama2cTokenizer(tokenizerBin(pieces), pieces.length));
    expect(Object.hasOwn(json.model.vocab, 'constructor') && json.model.vocab.constructor).toBe(5);
    expect(Object.hasOwn(json.model.vocab, '__proto__') && json.model.vocab['__proto__']).toBe(6);
    expect(json.model.merges).toEqual([
      ['__', 'proto__'],
      ['c', 'onstructor'],
    ]);
  });

  it('converts a vocabulary of long pieces in linear time (was quadratic per piece: seconds for 32 KB)', () => {
    const long = 'ab'.repeat(20_000);
    const pieces = ['<unk>', '\n<s>\n', '\n</s>\n', 'a', 'b', long, long.slice(0, -1), 'b'.repeat(3)];
    const t0 = performance.now();
    const json = llama2cTokenizerToHf(readLlama2cTokenizer(tokenizerBin(pieces), pieces.length));
    expect(performance.now() - t0).toBeLessThan(2000); // ~10 ms now; minutes before on 40,000-character pieces
    expect(json.model.merges).toContainEqual([long.slice(0, -1), 'b']);
  });
});
