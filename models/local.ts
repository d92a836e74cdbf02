/** Node-only: locate files that `npm run models` fetched (tests, CLI, benchmarks use this). */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WhittleError } from '../core/errors.ts';
import { SERVED_DIR, type Registry } from './registry.ts';
import registry from './registry.json' with { type: 'json' };

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** The registry, bundled into whoever imports this (the built CLI carries it; no file lookup). */
export function readRegistry(): Registry {
  return registry as Registry;
}

/** Absolute path of a fetched model file; a clear error when the models step has not run. */
export function localModelFile(modelId: string, fileName: string): string {
  const path = join(REPO_ROOT, SERVED_DIR, modelId, fileName);
  if (!existsSync(path)) {
    throw new WhittleError(
      'BAD_MODEL',
      `${modelId}/${fileName} is not fetched; run \`npm run models\` (it copies from ../shared/mirror or downloads from upstream)`,
      { modelId, fileName },
    );
  }
  return path;
}

/** The bytes of a fetched model file as a fresh ArrayBuffer. */
export function readLocalModelFile(modelId: string, fileName: string): ArrayBuffer {
  const buf = readFileSync(localModelFile(modelId, fileName));
  return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
}

/** The sha256 of a file, streamed (model files can be larger than a Buffer should be). */
export function sha256File(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => ok(hash.digest('hex')))
      .on('error', fail);
  });
}
