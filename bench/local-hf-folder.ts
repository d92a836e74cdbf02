/**
 * A trained model's Hugging Face folder as the benchmarks read it: from public/models/<id>/
 * (fetched by `npm run models`) or the repo's models/<id>/ (the project's own, committed), every
 * json / safetensors / bin file as a fresh ArrayBuffer, or null when neither holds weights yet.
 *
 * @example
 * const f = localHfFolder('stories-layerskip');
 * if (f) textModelFromHf(f.files);
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../models/local.ts';

export function localHfFolder(id: string): { dir: string; files: Record<string, ArrayBuffer> } | null {
  for (const dir of [join(REPO_ROOT, 'public', 'models', id), join(REPO_ROOT, 'models', id)]) {
    if (!existsSync(join(dir, 'model.safetensors'))) continue;
    const files: Record<string, ArrayBuffer> = {};
    for (const name of readdirSync(dir)) {
      if (!/\.(json|safetensors|bin)$/.test(name)) continue;
      const buf = readFileSync(join(dir, name));
      files[name] = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
    }
    return { dir, files };
  }
  return null;
}
