/**
 * Golden checks for e2e tests: tokens exactly, logits within a tolerance. Pure and runner-agnostic
 * (they throw; Playwright and Vitest both report a thrown Error as a failure), with messages that
 * say where the first difference is, since "arrays differ" on 32 000 logits helps nobody.
 *
 * @example
 * expectGoldenTokens(result.tokens, GOLDEN);
 * expectLogitsClose(logits, referenceLogits, { atol: 1e-4, rtol: 1e-3 });
 */
import { WhittleError } from '../../core/errors.ts';

/**
 * Throws unless `actual` equals `golden` token for token (`prefix: true`: unless `actual`
 * starts with it, for a run that generated more than the golden covers).
 *
 * @example
 * expectGoldenTokens([403, 407, 261], [403, 407, 261]); // passes
 * expectGoldenTokens([403, 9, 261], [403, 407, 261]);   // throws: token 1 is 9, golden 407
 */
export function expectGoldenTokens(
  actual: readonly number[],
  golden: readonly number[],
  { prefix = false }: { prefix?: boolean } = {},
): void {
  if (!Array.isArray(actual) || !Array.isArray(golden))
    throw new WhittleError('INVALID_ARGUMENT', 'expectGoldenTokens: tokens must be arrays of numbers');
  const n = Math.min(actual.length, golden.length);
  for (let i = 0; i < n; i++) {
    if (actual[i] !== golden[i]) {
      throw new Error(
        `golden tokens differ at index ${i}: got ${actual[i]}, golden ${golden[i]}\n  got:    [${actual.slice(0, i + 5).join(', ')}…]\n  golden: [${golden.slice(0, i + 5).join(', ')}…]`,
      );
    }
  }
  if (actual.length < golden.length)
    throw new Error(`golden tokens: got ${actual.length} tokens, golden has ${golden.length} (all ${n} given match)`);
  if (!prefix && actual.length > golden.length)
    throw new Error(
      `golden tokens: got ${actual.length} tokens, golden has ${golden.length} (pass { prefix: true } to check only the first ${golden.length})`,
    );
}

/**
 * How far a logits vector is from its reference.
 *
 * @example
 * const { maxAbsError, worstIndex } = expectLogitsClose(a, b, { atol: 1e-3 });
 */
export interface LogitsComparison {
  maxAbsError: number;
  /** |a-b| / max(|b|, tiny) at the worst element by the tolerance test. */
  maxRelError: number;
  worstIndex: number;
  /** Whether both vectors put their maximum at the same index (greedy decoding agrees). */
  sameArgmax: boolean;
}

/**
 * Throws unless every element satisfies |actual - expected| <= atol + rtol * |expected| (numpy's
 * `allclose`), or when a value is not finite. Returns the errors, for the report.
 *
 * @example
 * const cmp = expectLogitsClose(new Float32Array([1, 2.0001]), [1, 2], { atol: 1e-3 });
 * cmp.sameArgmax; // true
 */
export function expectLogitsClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  { atol = 1e-4, rtol = 1e-3 }: { atol?: number; rtol?: number } = {},
): LogitsComparison {
  if (!(atol >= 0) || !(rtol >= 0))
    throw new WhittleError('INVALID_ARGUMENT', `expectLogitsClose: atol and rtol must be non-negative numbers, got ${atol} and ${rtol}`);
  if (actual.length !== expected.length) throw new Error(`logits: got ${actual.length} values, expected ${expected.length}`);
  if (expected.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'expectLogitsClose: no logits to compare');
  let maxAbsError = 0;
  let maxRelError = 0;
  let worstIndex = 0;
  let worstExcess = -Infinity;
  let argA = 0;
  let argB = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    if (!Number.isFinite(a)) throw new Error(`logits: value ${i} is ${a}`);
    if (!Number.isFinite(b)) throw new WhittleError('INVALID_ARGUMENT', `expectLogitsClose: reference value ${i} is ${b}`);
    const err = Math.abs(a - b);
    maxAbsError = Math.max(maxAbsError, err);
    maxRelError = Math.max(maxRelError, err / Math.max(Math.abs(b), 1e-30));
    const excess = err - (atol + rtol * Math.abs(b));
    if (excess > worstExcess) [worstExcess, worstIndex] = [excess, i];
    if (a > actual[argA]!) argA = i;
    if (b > expected[argB]!) argB = i;
  }
  if (worstExcess > 0) {
    const a = actual[worstIndex]!;
    const b = expected[worstIndex]!;
    throw new Error(
      `logits differ beyond atol ${atol} + rtol ${rtol}: at index ${worstIndex} got ${a}, expected ${b} (|diff| ${Math.abs(a - b)}); max abs error ${maxAbsError}`,
    );
  }
  return { maxAbsError, maxRelError, worstIndex, sameArgmax: argA === argB };
}
