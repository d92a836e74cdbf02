/**
 * What a text worker is given to load from a store entry's files: the Blobs of a Hugging Face or
 * variant folder (disk-backed: the worker reads the shards tensor by tensor, so neither thread
 * ever holds a multi-GB checkpoint whole), or a llama2.c checkpoint and tokenizer as bytes.
 *
 * @example
 * const source = await textSourceOf(loaded, manifest.id); // a fresh set per worker (transfers detach bytes)
 */
import { WhittleError } from '../core/errors.ts';
import type { TextModelSource } from '../workers/text/service.ts';
import type { LoadedModel } from './store/store.ts';
import { VARIANT_FILE } from '../models/compress/variant-name.ts';

/** BAD_MODEL unless the files are a variant folder, a Hugging Face folder or a llama2.c checkpoint with its tokenizer. */
export function textSourceOf(loaded: LoadedModel, modelId: string): () => Promise<TextModelSource> {
  const names = [...loaded.files.keys()];
  const read = async (name: string) => loaded.files.get(name)!.arrayBuffer();
  const blobs = () => Object.fromEntries(names.map((n) => [n, loaded.files.get(n)!] as const));
  const isVariant = names.includes(VARIANT_FILE);
  const isHf = names.includes('config.json');
  const checkpoint = names.find((n) => n.endsWith('.bin') && !/^tok/.test(n) && n !== 'tokenizer.bin');
  const tokenizer = names.find((n) => /^tok.*\.bin$/.test(n) || n === 'tokenizer.bin' || n === 'tokenizer.json');
  if (!isVariant && !isHf && (!checkpoint || !tokenizer)) {
    throw new WhittleError('BAD_MODEL', `${modelId}: expected a llama2.c checkpoint + tokenizer or a Hugging Face folder`, { files: names.join(',') });
  }
  return async () =>
    isVariant
      ? { format: 'variant' as const, files: blobs() }
      : isHf
        ? { format: 'hf' as const, files: blobs() }
        : { format: 'llama2c' as const, checkpoint: await read(checkpoint!), tokenizer: await read(tokenizer!), name: checkpoint! };
}
