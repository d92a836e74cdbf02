/**
 * The published model shapes the synthetic generator writes: each one's config.json and
 * generation_config.json as published on the Hugging Face Hub (kept verbatim in shapes/<id>/),
 * and which tokenizer it gets (tokenizers.ts).
 *
 * @example
 * const shape = publishedShape('smollm2-135m'); // { id, configJson, generationConfigJson, tokenizer: 'smollm2' }
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { TokenizerKind } from './tokenizers.ts';

export interface SyntheticShape {
  id: string;
  /** Which published model this is the shape of (written into the folder's README). */
  source: string;
  /** config.json text, written byte for byte. */
  configJson: string;
  /** generation_config.json text, written byte for byte. */
  generationConfigJson: string;
  tokenizer: TokenizerKind;
}

export const SHAPES = {
  'smollm2-135m': { source: 'HuggingFaceTB/SmolLM2-135M', tokenizer: 'smollm2' },
  'smollm2-360m': { source: 'HuggingFaceTB/SmolLM2-360M', tokenizer: 'smollm2' },
  'qwen2.5-0.5b': { source: 'Qwen/Qwen2.5-0.5B', tokenizer: 'qwen2.5' },
  'llama-3.2-1b': { source: 'meta-llama/Llama-3.2-1B', tokenizer: 'llama3' },
} as const satisfies Record<string, { source: string; tokenizer: TokenizerKind }>;

export type ShapeId = keyof typeof SHAPES;

export function isShapeId(id: string): id is ShapeId {
  return Object.hasOwn(SHAPES, id);
}

export function publishedShape(id: ShapeId): SyntheticShape {
  const read = (file: string) => readFileSync(fileURLToPath(new URL(`./shapes/${id}/${file}`, import.meta.url)), 'utf8');
  return { id, ...SHAPES[id], configJson: read('config.json'), generationConfigJson: read('generation_config.json') };
}
