/**
 * Exact incremental detokenization: token ids in, the text they add to a sequence out, such that
 * everything emitted equals `decode(context + ids)` minus `decode(context)` (the context being
 * the prompt).
 *
 * Why not decode each new token alone: tokenizer decoders depend on context. Llama's removes the
 * leading space of the whole text (`Strip` after SentencePiece's dummy prefix), so "▁girl" alone
 * decodes to "girl" where after "little" it is " girl"; byte-fallback pieces (`<0xE2>`) and
 * byte-level BPE tokens carry parts of one UTF-8 character. So, as text-generation-inference and
 * vLLM do, this decodes a short window of recent ids twice, without and with the new ones, and
 * emits the difference: both decodes start at the same token, so start-dependent rules cancel
 * out; text ending in U+FFFD (an incomplete character) is held back until it completes. Decoding
 * a window rather than the whole sequence keeps a long generation linear.
 *
 * The window start must be a clean cut: after some text (a window whose first part decodes to
 * '', e.g. only special tokens, would let the decoder strip the new token's leading space), and
 * after a whole character (this library's byte decoders recover from a stray continuation byte
 * locally, so both decodes would share the garbage, but a decoder that rejects a whole byte run,
 * as the Rust tokenizers' ByteFallback does, would also garble the new character). Generated text only moves the start to where the previous
 * window ended cleanly; in the prompt the start is searched for (`cleanStart`).
 *
 * @example
 * const dec = new IncrementalDecoder(tokenizer, promptIds);
 * out += dec.push(id); // '' while a character is incomplete
 * out += dec.flush();  // at the end: whatever was held back, as decoded (U+FFFD for a broken character)
 */

/** What the decoder needs from a tokenizer: its own full decode (special tokens skipped). */
export interface Decodes {
  decode(ids: readonly number[]): string;
}

const REPLACEMENT = '\uFFFD';
/** Tokens of the prompt the first window starts with at least (text-generation-inference and vLLM use 5). */
const PROMPT_WINDOW = 4;

export class IncrementalDecoder {
  private readonly ids: number[];
  /** Window start: the decodes begin here. */
  private prefixOffset: number;
  /** Ids before this have been emitted (or belong to the prompt's stable text). */
  private readOffset: number;

  constructor(
    private readonly tokenizer: Decodes,
    context: readonly number[] = [],
  ) {
    this.ids = [...context];
    // A prompt given as ids may end inside a character: its incomplete tail is not stable text of
    // the prompt, so the read point moves before it and the token that completes the character
    // emits all of it.
    let read = context.length;
    let start = this.cleanStart(read);
    while (read > start && tokenizer.decode(this.ids.slice(start, read)).endsWith(REPLACEMENT)) {
      read--;
      start = this.cleanStart(read);
    }
    this.readOffset = read;
    this.prefixOffset = start;
  }

  /** Adds one id; returns the text that became final ('' while a character is incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (newText.length <= prefixText.length || newText.endsWith(REPLACEMENT)) return '';
    // The decoders Whittle loads only ever append to a clean window's text; slicing by length
    // (not by a failed startsWith) never re-emits or drops text even if one did not.
    const delta = newText.slice(prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return delta;
  }

  /**
   * The text `ids` would add after everything pushed so far, without pushing them (a demo shows
   * rejected drafts with it). Held-back bytes are part of the window, so a draft that would have
   * completed a character shows it.
   */
  peek(ids: readonly number[]): string {
    if (ids.length === 0) return '';
    const base = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    const withIds = this.tokenizer.decode([...this.ids.slice(this.prefixOffset), ...ids]);
    return withIds.startsWith(base) ? withIds.slice(base.length) : this.tokenizer.decode(ids);
  }

  /**
   * Ends the stream: the text held back (an incomplete character, decoded as the tokenizer
   * decodes it: U+FFFD), so that everything emitted equals the full decode's difference.
   */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    return newText.slice(prefixText.length);
  }

  /**
   * A window start for text read up to `end`: at least PROMPT_WINDOW tokens back, then further
   * back while the window's text is empty (nothing for a leading-space rule to act on) or starts
   * inside a character (its first bytes decode to U+FFFD). 0 is always clean: the full decode.
   */
  private cleanStart(end: number): number {
    let start = Math.max(0, end - PROMPT_WINDOW);
    while (start > 0) {
      const text = this.tokenizer.decode(this.ids.slice(start, end));
      if (text.length > 0 && !text.startsWith(REPLACEMENT)) break;
      start--;
    }
    return start;
  }
}
