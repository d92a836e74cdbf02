/**
 * `whittle compress <model-id|folder|url> --weights f32|q8|q4 [--group 32|64|128] [--sparsity 2:4|unstructured[:RATIO]] --out DIR`: writes a
 * compressed variant folder (models/compress/variant.ts) ahead of time, so a server hosts the
 * small packed weights and `w.text('https://host/variant-folder/')` loads them with no
 * quantization on the device:
 *   model.whittle.safetensors   the prepared, packed weights
 *   config.json, tokenizer files, generation_config.json   copied from the source (not the weights)
 *   whittle.json                sizes + sha256 of every file (verified loads by URL)
 * The stored form is the one a WASM load makes (fp32 head unless --head q8); WebGPU loads
 * resolve their kernel forms from it (variant-forms.ts). Also: `openVariantFolder` for
 * `whittle generate --model <variant folder>`.
 *
 * @example
 * await compressToFolder('stories-layerskip', { setting: { linear: 'q4', group: 32 }, out: 'dist/stories-q4' });
 */
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { once } from 'node:events';
import { WhittleError } from '../../core/errors.ts';
import { readRegistry } from '../../models/local.ts';
import { settingTag, toKernelForms } from '../../models/compress/variant-forms.ts';
import { unstreamableReason } from '../../models/compress/variant-name.ts';
import { VARIANT_FILE, writeVariant, type VariantInfo } from '../../models/compress/variant.ts';
import type { PreparedWeights } from '../../models/llama/prepare.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import type { TextModel } from '../../workers/text/model.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { prepareStored, textVariantFromFiles, variantStreamOf } from '../../workers/text/variant-model.ts';
import { FOLDER_MANIFEST } from '../store/folder-manifest.ts';
import { resolveUrlFolder } from '../store/url-folder.ts';
import { openModelArg } from './load.ts';
import { ensureRegistryModel, presentDir } from './registry-files.ts';
import { writeFolderManifest } from './write-manifest.ts';

/** The source's files a variant folder keeps: everything but the weights. */
const isWeightFile = (name: string) => /\.safetensors(\.index\.json)?$/.test(name) || (name.endsWith('.bin') && !/^tok.*\.bin$/.test(name) && name !== 'tokenizer.bin');

interface SourceFiles {
  id: string;
  revision: string;
  license?: string;
  format: 'hf' | 'llama2c';
  /** Non-weight files to copy: name -> bytes. */
  keep: Record<string, Uint8Array>;
}

async function fetchBytes(url: string, name: string, size: number, sha256: string | undefined): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    throw new WhittleError('NETWORK', `${url}: ${err instanceof Error ? err.message : String(err)}`, { file: name }, { cause: err });
  }
  if (!res.ok) throw new WhittleError('NETWORK', `${url}: HTTP ${res.status}`, { file: name, status: res.status });
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength !== size) throw new WhittleError('INTEGRITY', `${name}: the server sent ${body.byteLength} bytes, expected ${size}`, { file: name });
  if (sha256 !== undefined && createHash('sha256').update(body).digest('hex') !== sha256) throw new WhittleError('INTEGRITY', `${name}: sha256 does not match`, { file: name });
  return body;
}

/** What the variant records about its source, and the files it copies. */
async function sourceFiles(arg: string, integrity: 'sha256' | 'none' | undefined): Promise<SourceFiles> {
  if (/^https?:\/\//i.test(arg)) {
    const manifest = await resolveUrlFolder({ url: arg, ...(integrity ? { integrity } : {}) });
    const keep: Record<string, Uint8Array> = {};
    for (const f of manifest.files) if (!isWeightFile(f.name)) keep[f.name] = await fetchBytes(f.url, f.name, f.size, f.sha256);
    return { id: manifest.id, revision: manifest.revision, ...(manifest.license ? { license: manifest.license } : {}), format: 'config.json' in keep ? 'hf' : 'llama2c', keep };
  }
  const entry = readRegistry().models.find((m) => m.id === arg);
  let dir: string;
  let id: string;
  let revision = 'local';
  let license: string | undefined;
  if (entry) {
    dir = presentDir(entry) ?? (await ensureRegistryModel(entry));
    ({ id, revision } = entry);
    license = entry.license;
  } else {
    dir = isAbsolute(arg) ? arg : resolve(process.cwd(), arg);
    if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new WhittleError('INVALID_ARGUMENT', `unknown model '${arg}': not a registry id, a folder nor an http(s) URL`);
    id = basename(dir);
    // A folder published with a whittle.json keeps its revision.
    const published = join(dir, FOLDER_MANIFEST);
    if (existsSync(published)) revision = (JSON.parse(readFileSync(published, 'utf8')) as { revision?: string }).revision ?? revision;
  }
  // A registry model is the files its registry entry lists (its folder may hold test goldens too).
  const names = entry ? entry.files.map((f) => f.name) : readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile() && !n.startsWith('.') && n !== FOLDER_MANIFEST);
  const keep = Object.fromEntries(names.filter((n) => !isWeightFile(n) && /\.(json|bin|model|txt)$/.test(n)).map((n) => [n, new Uint8Array(readFileSync(join(dir, n)))]));
  return { id, revision, ...(license ? { license } : {}), format: names.includes('config.json') ? 'hf' : 'llama2c', keep };
}

export interface CompressResult {
  dir: string;
  /** Bytes of model.whittle.safetensors. */
  variantBytes: number;
  /** Every file written, with whittle.json's sizes. */
  files: { name: string; size: number }[];
  tag: string;
}

/**
 * Compresses `arg` (registry id, folder, or http(s) folder URL) to `setting` and writes the variant
 * folder to `out` (created; files of the same names are replaced).
 */
export async function compressToFolder(arg: string, options: { setting: WeightsSetting; out: string; integrity?: 'sha256' | 'none'; log?: (line: string) => void }): Promise<CompressResult> {
  const { setting } = options;
  const log = options.log ?? (() => undefined);
  const tag = settingTag(setting);
  const source = await sourceFiles(arg, options.integrity);
  const model = await openModelArg(arg, options.integrity ? { integrity: options.integrity } : {});
  const t0 = performance.now();
  const configSha256 = source.keep['config.json'] ? createHash('sha256').update(source.keep['config.json']).digest('hex') : undefined;
  const variantSource = { id: source.id, revision: source.revision, format: source.format, ...(configSha256 ? { configSha256 } : {}) };
  // The variant a WASM page's first load writes (saveStreamedVariant), byte for byte, made the
  // same way: a block at a time, never the whole model. Sparse settings need the whole model (masks
  // from its graphs): prepared whole, then written.
  const chunks: AsyncIterable<Uint8Array | ArrayBuffer> | Iterable<ArrayBuffer> = unstreamableReason(setting) === null
    ? (await variantStreamOf(model, setting, 'wasm', variantSource)).chunks()
    : writeVariant(setting.sparsity ? await sparseStored(model, setting) : await prepareStored(model, setting, 'wasm'), setting, variantSource);
  const dir = resolve(process.cwd(), options.out);
  mkdirSync(dir, { recursive: true });
  // Written chunk by chunk: the file is never one buffer (a 1B model's variant is ~1.4 GB).
  const file = join(dir, VARIANT_FILE);
  const out = createWriteStream(file);
  let variantBytes = 0;
  try {
    for await (const chunk of chunks) {
      variantBytes += chunk.byteLength;
      if (!out.write(new Uint8Array(chunk))) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  } catch (err) {
    // Compression runs while the file is written: a failure must not leave half a variant behind.
    out.destroy();
    rmSync(file, { force: true });
    throw err;
  }
  log(`${setting.sparsity ? 'masked, ' : ''}quantized ${model.config.nLayers} layers to ${tag} and wrote ${variantBytes} bytes in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const [name, bytes] of Object.entries(source.keep)) writeFileSync(join(dir, name), bytes);
  const manifest = await writeFolderManifest(dir, { revision: `${source.revision}+${tag}`, ...(source.license ? { license: source.license } : {}) });
  return { dir, variantBytes, files: manifest.files.map(({ name, size }) => ({ name, size })), tag };
}

/**
 * Sparsity (issue #14) needs the model's graphs: Wanda's input norms are measured through the
 * compiled probe graphs (onnxruntime-web WASM in Node, one thread), so a sparse variant is made by
 * the engine that a load would make, `TextEngine.compress(setting, { keepStored })`, and its
 * stored form written: the same masks and grids `lm.compress` makes in a browser.
 */
async function sparseStored(model: Awaited<ReturnType<typeof openModelArg>>, setting: WeightsSetting): Promise<PreparedWeights> {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const engine = await TextEngine.create(ort, 'wasm', model);
  try {
    await engine.compress(setting, { keepStored: true });
    return engine.takeStored()!;
  } finally {
    await engine.dispose();
  }
}

/** Whether `arg` names a local variant folder (one holding model.whittle.safetensors). */
export function isVariantFolderArg(arg: string): string | null {
  if (/^https?:\/\//i.test(arg)) return null;
  const dir = isAbsolute(arg) ? arg : resolve(process.cwd(), arg);
  return existsSync(join(dir, VARIANT_FILE)) ? dir : null;
}

/** A local variant folder -> the model (config, tokenizer) and its weights in WASM's kernel forms. */
export async function openVariantFolder(dir: string): Promise<{ model: Omit<TextModel, 'weights'>; prepared: PreparedWeights; info: VariantInfo }> {
  const names = readdirSync(dir).filter((n) => statSync(join(dir, n)).isFile() && n !== FOLDER_MANIFEST);
  const files = Object.fromEntries(names.map((n) => {
    const b = readFileSync(join(dir, n));
    return [n, b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer] as const;
  }));
  const { model, stored, info } = await textVariantFromFiles(files);
  return { model, prepared: toKernelForms(stored, info.setting, 'wasm'), info };
}
