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
    /** The id a prompt starts with when `prependsBos`: the one the tokenizer itself puts first, else the model config's. */
    readonly bosId: number | undefined,
  ) {}

  /**
   * From a parsed tokenizer.json. BAD_MODEL if it is not one. `bos` is what tokenizer_config.json
   * says (`add_bos_token`, `bos_token`): transformers rebuilds the post-processor from
   * `add_bos_token` when it is a boolean, so it wins over tokenizer.json's own template.
   */
  static fromJson(tokenizerJson: unknown, tokenizerConfig: object = {}, options: { prependsBos?: boolean; bos?: BosSetting } = {}): TextTokenizer {
    const j = tokenizerJson as { model?: { vocab?: unknown } } | null;
    if (typeof j !== 'object' || j === null || typeof j.model !== 'object' || j.model === null || typeof j.model.vocab !== 'object') {
      throw new WhittleError('BAD_MODEL', 'tokenizer.json has no model.vocab; not a Hugging Face tokenizer file');
    }
    let tok: Tokenizer;
    let leading: number[];
    try {
      tok = new Tokenizer(j, tokenizerConfig);
      // Encodes a probe text: a tokenizer.json that loads can still fail here (e.g. a post-processor without its template).
      leading = leadingSpecialIds(tok);
    } catch (err) {
      throw new WhittleError('BAD_MODEL', `tokenizer.json could not be loaded: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
    const namedBos = options.bos?.token === undefined ? undefined : tok.token_to_id(options.bos.token);
    const prepends = options.prependsBos ?? options.bos?.add ?? leading.length > 0;
    return new TextTokenizer(tok, j, prepends, leading[0] ?? namedBos);
  }

  /** Token ids for `text`, without special tokens (the engine prepends BOS itself). */
  encode(text: string): number[] {
    if (typeof text !== 'string') throw new WhittleError('INVALID_ARGUMENT', `encode takes a string, got ${typeof text}`);
    const ids = this.run('encode', () => this.tok.encode(text, { add_special_tokens: false }).ids);
    // A vocabulary that lacks pieces its own model produces (and no unk_token) yields undefined ids, which would reach the model as NaN.
    if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) throw new WhittleError('BAD_MODEL', 'tokenizer.json maps this text to pieces its vocabulary does not have');
    return ids;
  }

  decode(ids: readonly number[], skipSpecial = true): string {
    if (ids.length === 0) return ''; // @huggingface/tokenizers throws on an empty list
    // The library's own message for these ("token_ids must be a non-empty array of integers") is an untyped Error.
    if (!ids.every((id) => Number.isSafeInteger(id) && id >= 0)) throw new WhittleError('INVALID_ARGUMENT', 'token ids must be non-negative integers');
    return this.run('decode', () => this.tok.decode([...ids], { skip_special_tokens: skipSpecial, clean_up_tokenization_spaces: false }));
  }

  /**
   * The library call, with its failures typed: the arguments were checked above, so what is left
   * is a tokenizer.json that loaded but cannot do its job (e.g. a decoder step it lacks).
   */
  private run<T>(what: string, call: () => T): T {
    try {
      return call();
    } catch (err) {
      throw new WhittleError('BAD_MODEL', `tokenizer.json failed to ${what}: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
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

/** tokenizer_config.json's BOS settings (bosSettingOf reads them). */
export interface BosSetting {
  /** `add_bos_token` when it is a boolean. */
  add?: boolean;
  /** `bos_token` (a string or an AddedToken's `content`). */
  token?: string;
}

/** The BOS fields of a parsed tokenizer_config.json; anything malformed counts as absent. */
export function bosSettingOf(tokenizerConfig: unknown): BosSetting {
  if (typeof tokenizerConfig !== 'object' || tokenizerConfig === null) return {};
  const c = tokenizerConfig as { add_bos_token?: unknown; bos_token?: unknown };
  const token = typeof c.bos_token === 'string' ? c.bos_token : typeof (c.bos_token as { content?: unknown } | null)?.content === 'string' ? (c.bos_token as { content: string }).content : undefined;
  return { ...(typeof c.add_bos_token === 'boolean' ? { add: c.add_bos_token } : {}), ...(token !== undefined ? { token } : {}) };
}

/**
 * The ids encoding with special tokens puts in front of the text's own tokens (some templates
 * also append EOS: `<s> $A </s>`, so the text is looked for at every offset); [] when none.
 */
function leadingSpecialIds(tok: Tokenizer): number[] {
  const plain = tok.encode('a', { add_special_tokens: false }).ids;
  const special = tok.encode('a', { add_special_tokens: true }).ids;
  for (let offset = 1; offset + plain.length <= special.length; offset++) {
    if (plain.every((id, i) => special[offset + i] === id)) return special.slice(0, offset);
  }
  return [];
}
