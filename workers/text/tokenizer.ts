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
 * const stream = tok.streamDecoder(); stream.push(ids[0]!); // -> text as it becomes printable
 */
import { Tokenizer } from '@huggingface/tokenizers';
import { WhittleError } from '../../core/errors.ts';

export class TextTokenizer {
  private constructor(
    private readonly tok: Tokenizer,
    /** The tokenizer.json it was built from (exports write it back out). */
    readonly json: object,
  ) {}

  /** From a parsed tokenizer.json (and optional tokenizer_config.json). BAD_MODEL if it is not one. */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: object = {}): TextTokenizer {
    const j = tokenizerJson as { model?: { vocab?: unknown } } | null;
    if (typeof j !== 'object' || j === null || typeof j.model !== 'object' || j.model === null || typeof j.model.vocab !== 'object') {
      throw new WhittleError('BAD_MODEL', 'tokenizer.json has no model.vocab; not a Hugging Face tokenizer file');
    }
    try {
      return new TextTokenizer(new Tokenizer(j, tokenizerConfig), j);
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
   * Incremental decoding for streaming, O(1) amortized per token (text-generation-inference's
   * prefix/read offsets): decode a short window of recent ids twice, with and without the new
   * one, and emit the difference. Decoding the window (not the whole sequence) keeps long
   * generations linear; comparing two decodes of the same start keeps decoder rules that depend
   * on the first token (the leading-space Strip) out of the delta. Text ending in an incomplete
   * UTF-8 sequence (U+FFFD) is held back until the bytes that complete it arrive.
   */
  streamDecoder(): { push(id: number): string; text(): string } {
    const ids: number[] = [];
    let prefixOffset = 0;
    let readOffset = 0;
    return {
      push: (id: number) => {
        ids.push(id);
        const prefixText = this.decode(ids.slice(prefixOffset, readOffset));
        const newText = this.decode(ids.slice(prefixOffset));
        if (newText.length <= prefixText.length || newText.endsWith('\uFFFD')) return '';
        const delta = newText.startsWith(prefixText) ? newText.slice(prefixText.length) : newText;
        prefixOffset = readOffset;
        readOffset = ids.length;
        return delta;
      },
      text: () => this.decode(ids),
    };
  }
}
