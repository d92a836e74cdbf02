/**
 * config.json values a hostile or broken file may hold (fuzz findings of
 * scripts/fuzz/targets/hf-config.ts, minimized): each is a typed error, never a config with
 * non-finite numbers, impossible token ids or dims whose tables no runtime can allocate.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../local.ts';
import { llamaConfigFromHf } from './config.ts';

const base = JSON.parse(new TextDecoder().decode(readLocalModelFile('stories-baseline', 'config.json'))) as Record<string, unknown>;
const withValue = (patch: Record<string, unknown>) => () => llamaConfigFromHf({ ...base, ...patch });

describe('config.json: hostile values', () => {
  it('the unpatched config loads', () => {
    expect(llamaConfigFromHf(base).dim).toBeGreaterThan(0);
  });

  it.each([
    ['a negative token id', { bos_token_id: -1 }],
    ['a fractional token id', { eos_token_id: [0.5] }],
    ['a token id past 2^53', { bos_token_id: 2 ** 53 }],
    ['a token id list of strings', { eos_token_id: ['x'] }],
    ['rms_norm_eps of Infinity (1e999 in JSON)', { rms_norm_eps: Infinity }],
    ['rope_parameters.rope_theta of -1', { rope_parameters: { rope_type: 'default', rope_theta: -1 } }],
    ['a layer count of 8e300', { num_hidden_layers: 8e300 }],
    ['a context of 1e308 positions', { max_position_embeddings: 1e308 }],
    ['hidden_size 2^32', { hidden_size: 2 ** 32, num_attention_heads: 1, num_key_value_heads: 1 }],
  ])('%s is BAD_MODEL', (_, patch) => {
    expect(withValue(patch)).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });

  it('dims whose RoPE tables would not fit a typed array are refused before anything is allocated', () => {
    // 2^31 - 1 positions x 64 head dims: 2^37 floats of cos/sin tables, allocated from the config alone.
    expect(withValue({ max_position_embeddings: 2 ** 31 - 1 })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
    expect(llamaConfigFromHf({ ...base, max_position_embeddings: 2 ** 31 - 1 }, { maxContext: 4096 }).maxSeqLen).toBe(4096);
  });

  it('a value nested 100,000 deep is a typed error (its message does not recurse into it)', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}1${']'.repeat(100_000)}`) as unknown;
    for (const key of ['hidden_size', 'architectures', 'hidden_act', 'bos_token_id', 'sliding_window']) {
      expect(withValue({ [key]: deep })).toThrow(expect.objectContaining({ code: expect.stringMatching(/^(BAD_MODEL|UNSUPPORTED)$/) }));
    }
    expect(withValue({ rope_scaling: { rope_type: deep } })).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }));
  });
});
