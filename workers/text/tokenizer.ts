/**
 * The engine's tokenizer: a standard HF `tokenizer.json` run by `@huggingface/tokenizers`.
 *
 * Why that package and not `@huggingface/transformers`: it is the same tokenizer code
 * transformers.js uses, without transformers.js's model runtime and its own copy of
 * onnxruntime-web (~8 kB gzip, zero dependencies, no DOM), and it takes the parsed JSON we
 * already hold instead of fetching from the Hub. Chat templates are rendered by its sibling
 * `@huggingface/jinja` (chat.ts).
 *
 * @example
 * const tok = TextTokenizer.fromJson(JSON.parse(text));
 * const ids = tok.encode('Once upon a time'); // no BOS; the engine adds it
 * const stream = tok.streamDecoder(promptIds); stream.push(id); // -> the text `id` makes final
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { WhittleError } from '../../core/errors.ts';
import { IncrementalDecoder } from './incremental-decode.ts';

export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    /** The tokenizer.json it was built from (exports write it back out). */
    readonly json: object,
    /**
     * Whether a prompt starts with BOS, as the model was trained: Llama's tokenizers add
     * `<s>`/`<|begin_of_text|>`, Qwen's and SmolLM's add nothing. Read from the tokenizer's own
     * post-processing (what transformers does with `add_special_tokens`), unless the caller knows
     * better (llama2.c checkpoints always start with BOS).
     */
    readonly prependsBos: boolean,
  ) {}

  /** From a parsed tokenizer.json (and optional tokenizer_config.json). BAD_MODEL if it is not one. */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: object = {}, options: { prependsBos?: boolean } = {}): TextTokenizer {
    const j = tokenizerJson as { model?: { vocab?: unknown } } | null;
    if (typeof j !== 'object' || j === null || typeof j.model !== 'object' || j.model === null || typeof j.model.vocab !== 'object') {
      throw new WhittleError('BAD_MODEL', 'tokenizer.json has no model.vocab; not a Hugging Face tokenizer file');
    }
    try {
      const tok = new Tokenizer(j, tokenizerConfig);
      return new TextTokenizer(tok, j, options.prependsBos ?? addsLeadingSpecialToken(tok));
    } catch (err) {
      throw new WhittleError('BAD_MODEL', `tokenizer.json could not be loaded: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /** Token ids for `text`, without special tokens (the engine prepends BOS itself). */
  encode(text: string): number[] {
    return this.tok.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    if (ids.length === 0) return ''; // @huggingface/tokenizers throws on an empty list
    return this.tok.decode([...ids], { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false });
  }

  tokenToId(token: string): number | undefined {
    return this.tok.token_to_id(token);
  }

  /**
   * Incremental decoding for streaming (incremental-decode.ts): after `context` (the prompt's
   * ids), each pushed id returns the text it makes final, so that the pieces equal
   * `decode(context + ids)` minus `decode(context)`; an incomplete UTF-8 character is held back.
   */
  streamDecoder(context: readonly number[] = []): IncrementalDecoder {
    return new IncrementalDecoder(this, context);
  }
}

/**
 * Whether encoding with special tokens puts tokens in front of the text's own tokens (some
 * templates also append EOS: `<s> $A </s>`, so the text is looked for at every offset).
 */
function addsLeadingSpecialToken(tok: Tokenizer): boolean {
  const plain = tok.encode('a', { add_special_tokens: false }).ids;
  const special = tok.encode('a', { add_special_tokens: true }).ids;
  for (let offset = 1; offset + plain.length <= special.length; offset++) {
    if (plain.every((id, i) => special[offset + i] === id)) return true;
  }
  return false;
}
