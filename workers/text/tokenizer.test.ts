/**
 * TextTokenizer over a damaged tokenizer.json and hostile ids (fuzz findings of
 * scripts/fuzz/targets/tokenizer-json.ts, minimized): typed errors, not the library's own.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { TextTokenizer } from './tokenizer.ts';

const json = () =>
  JSON.parse(new TextDecoder().decode(readLocalModelFile('stories-baseline', 'tokenizer.json'))) as Record<string, Record<string, unknown>>;

describe('TextTokenizer: hostile input', () => {
  it('decode of ids that are not token ids is INVALID_ARGUMENT', () => {
    const tok = TextTokenizer.fromJson(json());
    for (const ids of [[-1], [0.5], [NaN], [2 ** 53]])
      expect(() => tok.decode(ids)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    expect(tok.decode(tok.encode('Once upon a time'))).toBe('Once upon a time');
  });

  it('a post-processor without its template is BAD_MODEL at load (it failed on the first encode, with a TypeError)', () => {
    const broken = json();
    delete broken.post_processor!.single;
    expect(() => TextTokenizer.fromJson(broken)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });

  it('a vocabulary that lacks the pieces its model produces is BAD_MODEL on encode, not undefined ids', () => {
    const broken = json();
    broken.model!.vocab = { '<0x8E>': 65536 }; // neither the pieces nor the unk_token '<unk>' are in it
    (broken as Record<string, unknown>).added_tokens = [];
    const tok = TextTokenizer.fromJson(broken);
    expect(() => tok.encode('Once upon a time')).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
});
