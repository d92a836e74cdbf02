/**
 * What one fuzz target is: a generator of hostile inputs (seeded, so every case can be replayed
 * from its seed alone) and a run that either returns (a correct result, checked by the target's
 * own oracle) or throws. The runner classifies what was thrown (case.ts).
 */
import type { Rng } from '../../core/random.ts';

export interface FuzzCase<I> {
  /** What run() receives. */
  input: I;
  /** Bytes the input occupies: the yardstick for "no allocation larger than the input justifies". */
  bytes: number;
  /** How the case was made (e.g. 'mutate:stories260K.bin', 'gen:huge-dims'), for the report. */
  kind: string;
}

export interface FuzzTarget<I = unknown> {
  name: string;
  /**
   * Typed-array/ArrayBuffer bytes a case may allocate per input byte (plus a fixed slack) before
   * it counts as over-allocation. Parsers that return views need ~0; widening int16 -> float32 2.
   */
  allocFactor: number;
  /** Reads the seed files once per worker (real model files from public/models). */
  load(): void;
  generate(rng: Rng, caseIndex: number): FuzzCase<I>;
  /** Parses `input`; throws InvalidResult when the parser returned something wrong. */
  run(input: I): void;
}

/** Thrown by an oracle: the parser accepted the input but what it returned breaks an invariant. */
export class InvalidResult extends Error {
  override readonly name = 'InvalidResult';
}

export function expectThat(ok: boolean, why: string): void {
  if (!ok) throw new InvalidResult(why);
}
