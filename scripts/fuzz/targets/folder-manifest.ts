/**
 * sdk/store/folder-manifest.ts parseFolderManifest (`whittle.json`, fetched from any host):
 * the manifest `npx whittle manifest` would write for the stories-baseline folder, mutated.
 */
import { createHash } from 'node:crypto';
import { FOLDER_FILE_NAME, parseFolderManifest } from '../../../sdk/store/folder-manifest.ts';
import { mutateJsonValue } from '../json.ts';
import { type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

const FILES = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

export function folderManifestTarget(): FuzzTarget<unknown> {
  let seed: unknown;
  return {
    name: 'folder-manifest',
    allocFactor: 4,
    load() {
      seed = {
        whittle: 1,
        revision: '2026-11-30',
        license: 'mit',
        files: FILES.map((name) => {
          const bytes = seedBytes('stories-baseline', name);
          return { name, size: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
        }),
      };
    },
    generate(rng: Rng) {
      const { value, bytes } = mutateJsonValue(rng, seed, { keys: ['whittle', 'revision', 'license', 'files', 'name', 'size', 'sha256'] });
      return { input: value, bytes, kind: 'whittle.json' };
    },
    run(input) {
      const m = parseFolderManifest(input);
      expectThat(m.files.length > 0 && new Set(m.files.map((f) => f.name)).size === m.files.length, 'file names not unique');
      for (const f of m.files) {
        expectThat(
          FOLDER_FILE_NAME.test(f.name) && !f.name.split('/').some((s) => s === '.' || s === '..'),
          `name ${JSON.stringify(f.name)}`,
        );
        expectThat(Number.isSafeInteger(f.size) && f.size >= 0, `size ${f.size}`);
        expectThat(/^[0-9a-f]{64}$/.test(f.sha256), `sha256 ${f.sha256}`);
      }
      expectThat(Number.isSafeInteger(m.files.reduce((a, f) => a + f.size, 0)), 'total size is not exact');
    },
  };
}
