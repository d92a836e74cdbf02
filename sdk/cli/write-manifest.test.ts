import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseFolderManifest } from '../store/folder-manifest.ts';
import { REPO_ROOT } from '../../models/local.ts';
import { writeFolderManifest } from './write-manifest.ts';

const dir = mkdtempSync(join(tmpdir(), 'whittle-manifest-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('whittle manifest', () => {
  it('lists every file with its size and sha256 (checked against coreutils sha256sum)', async () => {
    cpSync(join(REPO_ROOT, 'models/stories-layerskip'), join(dir, 'model'), { recursive: true });
    writeFileSync(join(dir, 'model/.DS_Store'), 'junk');
    const written = await writeFolderManifest(join(dir, 'model'), { revision: 'r1' });
    const onDisk = parseFolderManifest(JSON.parse(readFileSync(join(dir, 'model/whittle.json'), 'utf8')));
    expect(onDisk).toEqual(written);
    expect(onDisk.revision).toBe('r1');
    expect(onDisk.files.map((f) => f.name)).toEqual(['README.md', 'config.json', 'generation_config.json', 'golden-logits.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    for (const f of onDisk.files) {
      const [sum] = execFileSync('sha256sum', [join(dir, 'model', f.name)], { encoding: 'utf8' }).split(' ');
      expect(f.sha256).toBe(sum);
      expect(f.size).toBe(readFileSync(join(dir, 'model', f.name)).length);
    }
  });

  it('refuses file names a loader would refuse, and writes nothing', async () => {
    const bad = join(dir, 'bad');
    cpSync(join(REPO_ROOT, 'models/stories-layerskip/config.json'), join(bad, 'con fig.json'));
    await expect(writeFolderManifest(bad)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(() => readFileSync(join(bad, 'whittle.json'))).toThrow();
  });
});
