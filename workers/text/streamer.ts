/**
 * The generation's text stream: generated token ids in, the text each one makes final out, cut
 * before the first stop string. Exact by construction: the pieces (and the `finish()` tail)
 * concatenate to `decode(prompt + tokens)` minus `decode(prompt)`, cut at the first stop string
 * (IncrementalDecoder does the decoding; this adds the stop strings).
 *
 * Stop strings are matched on final text only (never on a half-decoded character), and text that
 * could still turn out to be the start of a stop string is held back until it cannot, so nothing
 * is emitted that a later token would take back.
 *
 * @example
 * const s = new TextStreamer(tokenizer, promptIds, ['\n\n']);
 * for (const id of generated) {
 *   const { text, stopped } = s.push(id);
 *   write(text);
 *   if (stopped) break;
 * }
 * write(s.finish()); // held-back text when no stop string ended it
 */
import { WhittleError } from '../../core/errors.ts';
import { IncrementalDecoder, type Decodes } from './incremental-decode.ts';

/** Length of the longest suffix of `text` that is a proper prefix of some stop string. */
function heldBack(text: string, stops: readonly string[]): number {
  let keep = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > keep; n--) {
      if (text.endsWith(s.slice(0, n))) {
        keep = n;
        break;
      }
    }
  }
  return keep;
}

/** Where the earliest stop string starts in `text`, or -1. */
function firstStop(text: string, stops: readonly string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

export class TextStreamer {
  private readonly decoder: IncrementalDecoder;
  private readonly stops: string[];
  /** Final text not emitted yet because it could be the start of a stop string. */
  private pending = '';
  private emitted = '';
  private tail = '';
  private ended = false;
  private hitStop = false;

  constructor(tokenizer: Decodes, prompt: readonly number[], stopStrings: readonly string[] = []) {
    this.decoder = new IncrementalDecoder(tokenizer, prompt);
    this.stops = stopStrings.filter((s) => s.length > 0);
  }

  /** Whether a stop string ended the text. */
  get stopped(): boolean {
    return this.hitStop;
  }

  /** Everything emitted, plus the tail once `finish()` ran. */
  get text(): string {
    return this.emitted + this.tail;
  }

  /** Adds one generated token; returns the text it made final and whether a stop string ended the text. */
  push(id: number): { text: string; stopped: boolean } {
    if (this.ended) throw new WhittleError('INTERNAL', 'TextStreamer: push after the text ended');
    const text = this.release(this.pending + this.decoder.push(id), false);
    this.emitted += text;
    return { text, stopped: this.hitStop };
  }

  /** The text `ids` would add at this point, without adding them (rejected drafts, for display). */
  peek(ids: readonly number[]): string {
    return this.decoder.peek(ids);
  }

  /**
   * Ends the text (no stop string ended it, or one did: then ''): returns what was held back,
   * the start of a stop string that never completed and an incomplete character as the tokenizer
   * decodes it, so the emitted pieces plus this equal the full decode.
   */
  finish(): string {
    if (this.ended) return '';
    this.tail = this.release(this.pending + this.decoder.flush(), true);
    this.ended = true;
    return this.tail;
  }

  /** The part of `candidate` (pending + newly final text) that can go out now; cuts at a stop string. */
  private release(candidate: string, final: boolean): string {
    const at = firstStop(candidate, this.stops);
    let text: string;
    if (at >= 0) {
      text = candidate.slice(0, at);
      this.pending = '';
      this.ended = true;
      this.hitStop = true;
    } else {
      const keep = final ? 0 : heldBack(candidate, this.stops);
      text = candidate.slice(0, candidate.length - keep);
      this.pending = candidate.slice(candidate.length - keep);
    }
    return text;
  }
}
