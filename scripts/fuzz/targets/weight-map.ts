/**
 * models/import/hf/model.ts readWeightMap (model.safetensors.index.json): an index mapping the
 * real stories-baseline tensors to two shards, mutated. (model.ts is the lead's to edit: findings
 * here are reported, not fixed.)
 */
import { readWeightMap } from '../../../models/import/hf/model.ts';
import { readSafetensors } from '../../../models/import/hf/safetensors.ts';
import { mutateJsonValue } from '../json.ts';
import { type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

const SHARD_NAME = /^(?!.*\.\.)[\w.-]+(\/[\w.-]+)*$/;

export function weightMapTarget(): FuzzTarget<unknown> {
  let seed: unknown;
  return {
    name: 'weight-map',
    allocFactor: 4,
    load() {
      const bytes = seedBytes('stories-baseline', 'model.safetensors');
      const names = [...readSafetensors(bytes.buffer as ArrayBuffer).tensors.keys()];
      seed = {
        metadata: { total_size: bytes.byteLength },
        weight_map: Object.fromEntries(names.map((n, i) => [n, `model-0000${1 + (i % 2)}-of-00002.safetensors`])),
      };
    },
    generate(rng: Rng) {
      const { value, bytes } = mutateJsonValue(rng, seed, { keys: ['weight_map', 'metadata', 'total_size'] });
      return { input: value, bytes, kind: 'index.json' };
    },
    run(input) {
      const map = readWeightMap(input);
      expectThat(map.size > 0, 'empty map accepted');
      for (const shard of map.values()) expectThat(SHARD_NAME.test(shard), `shard ${JSON.stringify(shard)}`);
    },
  };
}
