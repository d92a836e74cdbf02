/**
 * The plain decode loop: prefill the prompt, then one token at a time through the whole plan (or
 * its early-exit path), each drawn by the caller's picker. A token source for TextEngine.generate,
 * which decides when to stop; speculative-decode.ts is the other source.
 *
 * @example
 * const source = plainTokens(runner, promptIds, history, pick, maxSeqLen, { signal }, () => markPrefill());
 * for await (const { token } of source) { history.push(token); if (done) break; }
 */
import type { PlanRunner } from './runner.ts';

/** Draws the next token from one position's logits, given the ids so far (repetition penalty). */
export type TokenPicker = (logits: Float32Array, history: readonly number[]) => number;

/** A token from a token source, with where it came from when speculating. */
export interface Produced {
  token: number;
  /** 'draft': an accepted draft; 'verifier': the full model's own token. Absent without speculation. */
  origin?: 'draft' | 'verifier';
  /** Drafts the verifier rejected just before this token (shown struck out by a demo). */
  rejected?: number[];
  /** Dropout decoding (dropout-decode.ts), on steps where members ran: the base token, the members' tokens and drops. */
  dropout?: { base: number; votes: number[]; dropped: number[][] };
}

/**
 * One token at a time through the whole plan (or its exit path). Returns (done) when the context
 * is full. `history` is the caller's: it already holds every token this yielded.
 */
export async function* plainTokens(
  runner: PlanRunner,
  prompt: number[],
  history: readonly number[],
  pick: TokenPicker,
  maxSeqLen: number,
  step: { exit?: boolean; signal: AbortSignal },
  onPrefill: () => void,
): AsyncGenerator<Produced, void, undefined> {
  let logits = await runner.step(prompt, step);
  onPrefill();
  for (;;) {
    const token = pick(logits, history);
    yield { token };
    if (runner.position >= maxSeqLen) return;
    logits = await runner.step([token], step);
  }
}
