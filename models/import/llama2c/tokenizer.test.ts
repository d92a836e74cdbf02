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
});
