/**
 * sdk/store/manifest.ts validateManifest: the manifests.json entries the app ships, mutated
 * (a manifest also arrives as a caller's object: NaN, -0, undefined, bigint included), plus
 * generated manifests with hostile sizes, names, and thousands of files.
 */
import { validateManifest, manifestBytes, type ModelManifest } from '../../../sdk/store/manifest.ts';
import { hostileNumber, hostileString } from '../hostile.ts';
import { mutateJsonValue } from '../json.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { keysOf, seedJson } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** A manifest of 1 to 5000 well-formed files, one of which (if any) carries the hostile values. */
function generated(rng: Rng): unknown {
  const n = pick(rng, [1, 2, 3, 100, 5000]);
  const bad = chance(rng, 0.8) ? int(rng, 0, n - 1) : -1;
  return {
    id: chance(rng, 0.7) ? 'gen' : hostileString(rng),
    revision: chance(rng, 0.7) ? '1' : hostileString(rng),
    ...(chance(rng, 0.3) ? { integrity: pick(rng, ['none', 'sha256', 'NONE', 1]) } : {}),
    files: Array.from({ length: n }, (_, i) => {
      const hostile = i === bad;
      return {
        name: hostile && chance(rng, 0.3) ? hostileString(rng) : `f${i}.bin`,
        url: hostile && chance(rng, 0.3) ? hostileString(rng) : `/m/f${i}.bin`,
        size: hostile && chance(rng, 0.5) ? hostileNumber(rng) : chance(rng, 0.01) ? 2 ** 52 : int(rng, 0, 1e6),
        ...(!hostile || chance(rng, 0.8) ? { sha256: hostile && chance(rng, 0.3) ? hostileString(rng) : SHA } : {}),
      };
    }),
  };
}

export function manifestTarget(): FuzzTarget<unknown> {
  let seeds: unknown[] = [];
  let keys: string[] = [];
  return {
    name: 'manifest',
    allocFactor: 4,
    load() {
      seeds = (seedJson('', 'manifests.json') as { models: unknown[] }).models;
      keys = keysOf(seeds);
    },
    generate(rng) {
      if (chance(rng, 0.3)) {
        const input = generated(rng);
        return { input, bytes: JSON.stringify(input).length, kind: 'generated' };
      }
      const { value, bytes } = mutateJsonValue(rng, pick(rng, seeds), { keys });
      return { input: value, bytes, kind: 'mutate' };
    },
    run(input) {
      const m: ModelManifest = validateManifest(input);
      // Oracle: the normalized manifest is valid again and means the same; sizes add up exactly.
      expectThat(JSON.stringify(validateManifest(m)) === JSON.stringify(m), 'validateManifest is not idempotent');
      expectThat(m.files.length > 0 && new Set(m.files.map((f) => f.name)).size === m.files.length, 'file names not unique');
      for (const f of m.files) {
        expectThat(Number.isSafeInteger(f.size) && f.size >= 0, `size ${f.size}`);
        expectThat(!f.name.split('/').includes('..') && !f.name.startsWith('/'), `name ${JSON.stringify(f.name)} climbs out`);
      }
      expectThat(Number.isSafeInteger(manifestBytes(m)), `total size ${manifestBytes(m)} is not exact`);
    },
  };
}
