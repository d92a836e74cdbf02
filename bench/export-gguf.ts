/**
 * Writes GGUF files (models/export/gguf.ts) of a model folder for llama.cpp / wllama, at F32,
 * Q8_0 and Q4_0, into bench/out/gguf/<id>/<id>-<type>.gguf (gitignored, served by the dev server):
 *
 *   npx tsx bench/export-gguf.ts --model stories260K [--model public/models/stories-layerskip] [--type F32 --type Q8_0]
 *
 * A model is a folder under public/models/ (by id) or a path: a Hugging Face folder (config.json
 * + model.safetensors or a sharded index, tokenizer.json) or a llama2.c folder (one checkpoint
 * `*.bin` + its `tok*.bin`). Files already newer than their source are kept. The e2e spec and
 * bench:scale call ensureGguf() directly.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from '../models/local.ts';
import { readLlama2cCheckpoint } from '../models/import/llama2c/checkpoint.ts';
import { readLlama2cTokenizer } from '../models/import/llama2c/tokenizer.ts';
import { readHfModel, type HfModelFiles } from '../models/import/hf/model.ts';
import { exportGguf, type GgufWeightType } from '../models/export/gguf.ts';
import type { GgufTokenizerSource } from '../models/export/gguf-tokenizer.ts';
import type { LlamaConfig, LlamaWeights } from '../models/llama/types.ts';

export const GGUF_TYPES: readonly GgufWeightType[] = ['F32', 'Q8_0', 'Q4_0'];
export const GGUF_OUT = join(REPO_ROOT, 'bench/out/gguf');

const bytesOf = (path: string): ArrayBuffer => {
  const b = readFileSync(path);
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
};

/** The folder of a model id (under public/models/) or a path. */
export function modelDir(idOrPath: string): string {
  const byId = join(REPO_ROOT, 'public/models', idOrPath);
  return existsSync(byId) ? byId : resolve(idOrPath);
}

/** Reads a model folder with the project's importers. */
export function readModelFolder(dir: string): { config: LlamaConfig; weights: LlamaWeights; tokenizer: GgufTokenizerSource } {
  const names = readdirSync(dir);
  if (names.includes('config.json')) {
    const files: HfModelFiles = {};
    for (const n of names) if (/\.(json|safetensors)$/.test(n)) files[n] = bytesOf(join(dir, n));
    const { config, weights, tokenizerJson } = readHfModel(files);
    if (!tokenizerJson) throw new Error(`${dir}: no tokenizer.json`);
    const chatTemplate = files['tokenizer_config.json']
      ? (JSON.parse(new TextDecoder().decode(files['tokenizer_config.json'])) as { chat_template?: unknown }).chat_template
      : undefined;
    return {
      config,
      weights,
      tokenizer: { kind: 'hf', json: tokenizerJson, ...(typeof chatTemplate === 'string' ? { chatTemplate } : {}) },
    };
  }
  const tok = names.find((n) => /^tok.*\.bin$/.test(n));
  const ckpt = names.find((n) => n.endsWith('.bin') && n !== tok);
  if (!tok || !ckpt) throw new Error(`${dir}: neither a Hugging Face folder (config.json) nor a llama2.c one (checkpoint .bin + tok*.bin)`);
  const { config, weights } = readLlama2cCheckpoint(bytesOf(join(dir, ckpt)), ckpt);
  return {
    config,
    weights,
    tokenizer: { kind: 'llama2c', tokenizer: readLlama2cTokenizer(bytesOf(join(dir, tok)), config.vocabSize, tok) },
  };
}

const newest = (dir: string) => Math.max(...readdirSync(dir).map((f) => statSync(join(dir, f)).mtimeMs));

/**
 * bench/out/gguf/<id>/<id>-<type>.gguf for each type, written when missing or older than the
 * model folder; returns the paths by type. The model is read once, only if something is written.
 */
export function ensureGguf(
  idOrPath: string,
  types: readonly GgufWeightType[] = GGUF_TYPES,
  log: (l: string) => void = console.error,
): Record<string, string> {
  const dir = modelDir(idOrPath);
  const id = basename(dir);
  const outDir = join(GGUF_OUT, id);
  const paths = Object.fromEntries(types.map((t) => [t, join(outDir, `${id}-${t}.gguf`)]));
  const stale = types.filter((t) => !existsSync(paths[t]!) || statSync(paths[t]!).mtimeMs < newest(dir));
  if (stale.length === 0) return paths;
  const model = readModelFolder(dir);
  mkdirSync(outDir, { recursive: true });
  for (const type of stale) {
    const t0 = performance.now();
    const bytes = exportGguf(model.config, model.weights, model.tokenizer, { type, name: id });
    writeFileSync(paths[type]!, bytes);
    log(`gguf ${id} ${type}: ${paths[type]} (${(bytes.length / 2 ** 20).toFixed(1)} MiB, ${Math.round(performance.now() - t0)} ms)`);
  }
  return paths;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({
    options: { model: { type: 'string', multiple: true, default: ['stories260K'] }, type: { type: 'string', multiple: true } },
  });
  const types = (values.type ?? GGUF_TYPES) as GgufWeightType[];
  for (const t of types) if (!GGUF_TYPES.includes(t)) throw new Error(`--type ${t}: expected one of ${GGUF_TYPES.join(', ')}`);
  for (const m of values.model ?? []) ensureGguf(m, types);
}
