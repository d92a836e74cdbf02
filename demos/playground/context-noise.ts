/**
 * The noise bench/dropout.ts's task puts into a context, for the dropout panel's buttons: random
 * tokens in place of some of the context's, or a distractor sentence from another story
 * inserted at the sentence end nearest the middle. Pure functions over text and ids, seeded.
 */
import type { TokenPieces } from './token-pieces.ts';

/** mulberry32: a small seeded generator, so a button press with the same seed corrupts the same way. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * `ids` (the context's tokens) with `fraction` of them replaced by random word pieces, written
 * back as text. The bench draws from every id; here only from word pieces (no byte or special
 * tokens), so the noise stays visible text the user can read and edit.
 */
export function replaceRandomTokens(ids: readonly number[], fraction: number, vocab: TokenPieces, random: () => number): string {
  const out = [...ids];
  const positions = out.map((_, i) => i);
  for (let i = positions.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [positions[i], positions[j]] = [positions[j]!, positions[i]!];
  }
  for (const p of positions.slice(0, Math.round(fraction * out.length))) out[p] = vocab.wordIds[Math.floor(random() * vocab.wordIds.length)]!;
  return out
    .map((id) => vocab.pieces[id] ?? '')
    .join('')
    .trimStart();
}

const SENTENCE = /[^.!?]+[.!?]+["”]?/g;

/** `context` with `sentence` inserted after the sentence end nearest its middle. */
export function insertSentence(context: string, sentence: string): string {
  const ends = [...context.matchAll(SENTENCE)].map((m) => m.index + m[0].length);
  const middle = context.length / 2;
  const at = ends.length > 1 ? ends.slice(0, -1).reduce((best, e) => (Math.abs(e - middle) < Math.abs(best - middle) ? e : best)) : context.length;
  return `${context.slice(0, at)} ${sentence.trim()}${context.slice(at)}`;
}

/** The sentences of `texts`, for distractors. */
export function sentencesOf(texts: readonly string[]): string[] {
  return texts.flatMap((t) => [...t.matchAll(SENTENCE)].map((m) => m[0].trim()));
}
