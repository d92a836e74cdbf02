/**
 * `whittle manifest <folder> [--revision R] [--license L]`: writes the folder's `whittle.json`
 * (every file's size and sha256), the manifest that makes loads by URL verified
 * (sdk/store/README.md). A publisher runs it once before uploading the folder.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { WhittleError } from '../../core/errors.ts';
import { sha256File } from '../../models/local.ts';
import { FOLDER_FILE_NAME, FOLDER_MANIFEST, parseFolderManifest, type FolderManifest } from '../store/folder-manifest.ts';


/** Every regular file under `dir` (relative, '/'-separated), skipping dot-files and the manifest itself. */
function listFiles(dir: string, root = dir): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? listFiles(join(dir, e.name), root) : e.isFile() ? [relative(root, join(dir, e.name)).split(sep).join('/')] : []))
    .filter((name) => name !== FOLDER_MANIFEST)
    .sort();
}

export async function writeFolderManifest(dir: string, options: { revision?: string; license?: string } = {}): Promise<FolderManifest> {
  const names = listFiles(dir);
  if (names.length === 0) throw new WhittleError('INVALID_ARGUMENT', `${dir} has no files to list`, { dir });
  const files = [];
  for (const name of names) {
    // The loader refuses names that could climb out of the folder; refuse them here first.
    if (!FOLDER_FILE_NAME.test(name)) throw new WhittleError('INVALID_ARGUMENT', `${name}: file names may use letters, digits, '_', '-', '.' and '/' only`, { file: name });
    files.push({ name, size: statSync(join(dir, name)).size, sha256: await sha256File(join(dir, name)) });
  }
  const json = { whittle: 1, ...(options.revision ? { revision: options.revision } : {}), ...(options.license ? { license: options.license } : {}), files };
  const manifest = parseFolderManifest(json); // what loaders will accept, checked before it is written
  writeFileSync(join(dir, FOLDER_MANIFEST), `${JSON.stringify(json, null, 2)}\n`);
  return manifest;
}
