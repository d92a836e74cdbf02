/**
 * Node-side model lookup for the CLI: a registry id (files fetched under public/models/<id>/, or
 * a local model's `path`) or a folder path -> TextModel, through the same loaders a worker uses.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { WhittleError } from '../../core/errors.ts';
import { REPO_ROOT, readRegistry } from '../../models/local.ts';
import { SERVED_DIR, type RegistryModel } from '../../models/registry.ts';
import { textModelFromHf, textModelFromLlama2c, type TextModel } from '../../workers/text/model.ts';

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
};

/** The folder holding a registry model's files on this machine. */
export function modelDir(m: RegistryModel): string {
  return m.path ? resolve(REPO_ROOT, m.path) : join(REPO_ROOT, SERVED_DIR, m.id);
}

/** Whether every file the registry lists for `m` is on disk. */
export function isPresent(m: RegistryModel): boolean {
  const dir = modelDir(m);
  return m.files.length > 0 ? m.files.every((f) => existsSync(join(dir, f.name))) : existsSync(join(dir, 'config.json'));
}

/** Reads a model folder: HF layout if it has config.json, else llama2.c (.bin checkpoint + tokenizer). */
export function loadFolder(dir: string): TextModel {
  const names = readdirSync(dir);
  if (names.includes('config.json')) {
    const files: Record<string, ArrayBuffer> = {};
    for (const n of names) if (/\.(json|safetensors)$/.test(n) || /^tok.*\.bin$|^tokenizer\.bin$/.test(n)) files[n] = bytes(join(dir, n));
    return textModelFromHf(files);
  }
  const isTokenizer = (n: string) => /^tok.*\.bin$/.test(n) || n === 'tokenizer.bin';
  const checkpoint = names.find((n) => n.endsWith('.bin') && !isTokenizer(n));
  if (!checkpoint) throw new WhittleError('BAD_MODEL', `${dir} has neither config.json nor a llama2.c .bin checkpoint`, { dir });
  const tokJson = names.includes('tokenizer.json') ? (JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')) as object) : null;
  const tokBin = names.find(isTokenizer);
  return textModelFromLlama2c(bytes(join(dir, checkpoint)), tokJson ?? (tokBin ? bytes(join(dir, tokBin)) : null), checkpoint);
}

/** `--model` value: a registry id or a path to a model folder. */
export function loadModel(idOrPath: string): TextModel {
  const entry = readRegistry().models.find((m) => m.id === idOrPath);
  if (entry) {
    if (entry.kind !== 'text') throw new WhittleError('INVALID_ARGUMENT', `${idOrPath} is a ${entry.kind} model, not a text model`);
    if (!isPresent(entry)) throw new WhittleError('BAD_MODEL', `${idOrPath} is not on this machine; run \`npm run models\``, { modelId: idOrPath });
    return loadFolder(modelDir(entry));
  }
  const dir = isAbsolute(idOrPath) ? idOrPath : resolve(process.cwd(), idOrPath);
  if (existsSync(dir) && statSync(dir).isDirectory()) return loadFolder(dir);
  throw new WhittleError('INVALID_ARGUMENT', `unknown model '${idOrPath}': not a registry id (see \`whittle models\`) nor a folder`);
}
