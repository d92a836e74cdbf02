/**
 * Node-side model lookup for the CLI: a registry id (files fetched under public/models/<id>/, or
 * a local model's `path`), a folder path or an http(s) folder URL -> TextModel, through the same
 * loaders a worker uses.
 */
import { createHash } from 'node:crypto';
import { existsSync, openAsBlob, readFileSync, readdirSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { WhittleError } from '../../core/errors.ts';
import { readRegistry } from '../../models/local.ts';
import { ensureRegistryModel, presentDir } from './registry-files.ts';
import { openTextModelFromHf, textModelFromHf, textModelFromLlama2c, type StreamedTextModel, type TextModel } from '../../workers/text/model.ts';
import type { ManifestFile } from '../store/manifest.ts';
import { resolveUrlFolder } from '../store/url-folder.ts';

const bytes = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
};

const isTokenizer = (n: string) => /^tok.*\.bin$/.test(n) || n === 'tokenizer.bin';

/** A model from its files: HF layout if there is a config.json, else llama2.c (.bin checkpoint + tokenizer). */
function textModelFromFiles(files: Record<string, ArrayBuffer>, where: string): TextModel {
  const names = Object.keys(files);
  if (names.includes('config.json')) return textModelFromHf(files);
  const checkpoint = names.find((n) => n.endsWith('.bin') && !isTokenizer(n));
  if (!checkpoint) throw new WhittleError('BAD_MODEL', `${where} has neither config.json nor a llama2.c .bin checkpoint`, { dir: where });
  const tokJson = files['tokenizer.json'] ? (JSON.parse(new TextDecoder().decode(files['tokenizer.json'])) as object) : null;
  const tokBin = names.find(isTokenizer);
  return textModelFromLlama2c(files[checkpoint]!, tokJson ?? (tokBin ? files[tokBin]! : null), checkpoint);
}

/** Reads a model folder: HF layout (one safetensors file or shards + index) or llama2.c. */
export function loadFolder(dir: string): TextModel {
  const names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  const hf = names.includes('config.json');
  // Only what the loader reads: an HF folder may also hold pytorch_model.bin or ONNX exports.
  const wanted = names.filter((n) => (hf ? /\.(json|safetensors)$/.test(n) || isTokenizer(n) : n.endsWith('.bin') || n === 'tokenizer.json'));
  return textModelFromFiles(Object.fromEntries(wanted.map((n) => [n, bytes(join(dir, n))])), dir);
}

/** One file of a URL folder, held to the manifest's size and (when it has one) sha256. */
async function download(f: ManifestFile): Promise<ArrayBuffer> {
  let res: Response;
  try {
    res = await fetch(f.url);
  } catch (err) {
    throw new WhittleError('NETWORK', `${f.url}: ${err instanceof Error ? err.message : String(err)}`, { file: f.name }, { cause: err });
  }
  if (!res.ok) throw new WhittleError('NETWORK', `${f.url}: HTTP ${res.status}`, { file: f.name, status: res.status });
  const body = await res.arrayBuffer();
  if (body.byteLength !== f.size) {
    throw new WhittleError('INTEGRITY', `${f.name}: the server sent ${body.byteLength} bytes, expected ${f.size}`, { file: f.name, expected: f.size, actual: body.byteLength });
  }
  const digest = createHash('sha256').update(new Uint8Array(body)).digest('hex');
  if (f.sha256 !== undefined && digest !== f.sha256) {
    throw new WhittleError('INTEGRITY', `${f.name}: sha256 ${digest} does not match ${f.sha256}`, { file: f.name, expected: f.sha256, actual: digest });
  }
  return body;
}

/**
 * loadFolder for running the model: an HF folder's files are opened as disk-backed Blobs
 * (`fs.openAsBlob`) and the weights stream layer by layer into the engine, so a multi-GB
 * checkpoint is never read into memory whole. llama2.c folders load as loadFolder does.
 */
export async function openFolder(dir: string): Promise<TextModel | StreamedTextModel> {
  const names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile());
  if (!names.includes('config.json')) return loadFolder(dir);
  const wanted = names.filter((n) => /\.(json|safetensors)$/.test(n) || isTokenizer(n));
  return openTextModelFromHf(Object.fromEntries(await Promise.all(wanted.map(async (n) => [n, await openAsBlob(join(dir, n))] as const))));
}

/**
 * An http(s) model folder, resolved as the browser does (whittle.json, or discovery with
 * `integrity: 'none'`), downloaded into memory (the CLI keeps no cache) and verified.
 */
export async function loadUrlFolder(url: string, opts: { integrity?: 'sha256' | 'none' } = {}): Promise<TextModel> {
  const manifest = await resolveUrlFolder({ url, ...(opts.integrity ? { integrity: opts.integrity } : {}) });
  const files: Record<string, ArrayBuffer> = {};
  for (const f of manifest.files) files[f.name] = await download(f);
  return textModelFromFiles(files, manifest.id);
}

/** `--model` value: a registry id or a path to a model folder. */
export function loadModel(idOrPath: string): TextModel {
  const entry = readRegistry().models.find((m) => m.id === idOrPath);
  if (entry) {
    if (entry.kind !== 'text') throw new WhittleError('INVALID_ARGUMENT', `${idOrPath} is a ${entry.kind} model, not a text model`);
    const dir = presentDir(entry);
    if (!dir) throw new WhittleError('BAD_MODEL', `${idOrPath} is not on this machine; run \`npm run models\` (in the repository) or load it through loadModelArg, which downloads it`, { modelId: idOrPath });
    return loadFolder(dir);
  }
  const dir = isAbsolute(idOrPath) ? idOrPath : resolve(process.cwd(), idOrPath);
  if (existsSync(dir) && statSync(dir).isDirectory()) return loadFolder(dir);
  throw new WhittleError('INVALID_ARGUMENT', `unknown model '${idOrPath}': not a registry id (see \`whittle models\`), a folder nor an http(s) URL`);
}

/** `--model` value: a registry id, a folder path or an http(s) folder URL. */
export async function loadModelArg(arg: string, opts: { integrity?: 'sha256' | 'none' } = {}): Promise<TextModel> {
  if (/^https?:\/\//i.test(arg)) return loadUrlFolder(arg, opts);
  const entry = readRegistry().models.find((m) => m.id === arg);
  // A registry model not on this machine (an installed CLI) is downloaded, verified, into the cache.
  if (entry?.kind === 'text' && !presentDir(entry)) return loadFolder(await ensureRegistryModel(entry));
  return loadModel(arg);
}

/** loadModelArg for running the model: local HF folders stream their weights (openFolder). */
export async function openModelArg(arg: string, opts: { integrity?: 'sha256' | 'none' } = {}): Promise<TextModel | StreamedTextModel> {
  if (/^https?:\/\//i.test(arg)) return loadUrlFolder(arg, opts);
  const entry = readRegistry().models.find((m) => m.id === arg);
  if (entry) {
    if (entry.kind !== 'text') throw new WhittleError('INVALID_ARGUMENT', `${arg} is a ${entry.kind} model, not a text model`);
    return openFolder(presentDir(entry) ?? (await ensureRegistryModel(entry)));
  }
  const dir = isAbsolute(arg) ? arg : resolve(process.cwd(), arg);
  if (existsSync(dir) && statSync(dir).isDirectory()) return openFolder(dir);
  return loadModel(arg); // its error names what the argument is not
}
