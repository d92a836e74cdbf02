/**
 * models/import/hf/config.ts llamaConfigFromHf: the configs of the project's models and of the
 * published ones kept in models/synthetic/shapes/, mutated structurally (dims that overflow,
 * NaN/negative/huge/1e999 values, wrong types, rope_scaling variants), and hostile maxContext.
 */
import { llamaConfigFromHf, type HfConfigOptions } from '../../../models/import/hf/config.ts';
import { headSizeOf, type LlamaConfig } from '../../../models/llama/types.ts';
import { hostileNumber } from '../hostile.ts';
import { mutateJsonValue } from '../json.ts';
import { chance, pick, type Rng } from '../rand.ts';
import { keysOf, repoJson, seedJson } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

interface Input {
  config: unknown;
  options: HfConfigOptions;
}

const EXTRA_KEYS = [
  'rope_scaling',
  'rope_parameters',
  'rope_type',
  'type',
  'factor',
  'low_freq_factor',
  'high_freq_factor',
  'original_max_position_embeddings',
  'head_dim',
  'sliding_window',
  'use_sliding_window',
  'max_window_layers',
  'layer_types',
  'attention_bias',
  'mlp_bias',
  'partial_rotary_factor',
  'rope_theta',
  'rms_norm_eps',
  'bos_token_id',
  'eos_token_id',
  'tie_word_embeddings',
  'num_key_value_heads',
];

const positiveInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
const positiveFinite = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;
const tokenId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function check(c: LlamaConfig): void {
  for (const key of ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen'] as const) {
    expectThat(positiveInt(c[key]) && c[key] <= 2 ** 31 - 1, `${key} = ${c[key]}`);
  }
  expectThat(positiveFinite(c.ropeTheta) && positiveFinite(c.normEps), `ropeTheta ${c.ropeTheta}, normEps ${c.normEps}`);
  expectThat(tokenId(c.bosTokenId) && tokenId(c.eosTokenId), `token ids ${String(c.bosTokenId)}, ${String(c.eosTokenId)}`);
  const hs = headSizeOf(c);
  expectThat(positiveInt(hs) && hs % 2 === 0 && c.nHeads % c.nKvHeads === 0, `heads: ${c.nHeads} x ${hs}, ${c.nKvHeads} kv`);
  // The largest weight (the embedding) must be addressable: a config whose shapes overflow
  // 2^53 elements can never match a file, and one past 2^31 cannot be a typed array.
  expectThat(c.vocabSize * c.dim <= 2 ** 53 && c.hiddenDim * c.dim <= 2 ** 53, 'weight shapes overflow');
  if (c.ropeScaling) {
    for (const v of Object.values(c.ropeScaling)) if (typeof v === 'number') expectThat(positiveFinite(v), `rope scaling value ${v}`);
  }
}

export function hfConfigTarget(): FuzzTarget<Input> {
  let seeds: unknown[] = [];
  let keys: string[] = [];
  return {
    name: 'hf-config',
    allocFactor: 4,
    load() {
      seeds = [
        ...['stories-baseline', 'stories-layerskip'].map((m) => seedJson(m, 'config.json')),
        ...['llama-3.2-1b', 'qwen2.5-0.5b', 'smollm2-135m', 'smollm2-360m'].map((m) =>
          repoJson('models', 'synthetic', 'shapes', m, 'config.json'),
        ),
      ];
      keys = [...new Set([...keysOf(seeds), ...EXTRA_KEYS])];
    },
    generate(rng: Rng) {
      const { value: config, bytes } = mutateJsonValue(rng, pick(rng, seeds), { keys });
      const options: HfConfigOptions = chance(rng, 0.2)
        ? { maxContext: chance(rng, 0.5) ? pick(rng, [1, 256, 4096]) : hostileNumber(rng) }
        : {};
      return { input: { config, options }, bytes, kind: 'config.json' };
    },
    run({ config, options }) {
      check(llamaConfigFromHf(config, options));
    },
  };
}
