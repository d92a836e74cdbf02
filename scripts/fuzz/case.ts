/**
 * Runs one case and classifies it: 'ok' (a result the oracle accepts), a WhittleError code, or a
 * finding: 'untyped' (anything else thrown: a TypeError, RangeError, a library's own Error),
 * 'invalid' (the oracle rejected the result); 'fuzzer-error' when the generator itself failed. Over-allocation is judged separately, because a
 * case can throw a typed error after allocating gigabytes.
 */
import { WhittleError } from '../../core/errors.ts';
import { allocStats, resetAlloc } from './alloc.ts';
import { caseRng } from './rand.ts';
import { InvalidResult, type FuzzTarget } from './target.ts';

/** Bytes any case may allocate regardless of its input size (small fixed tables, decoders). */
export const ALLOC_SLACK_BYTES = 1 << 20;

export interface CaseResult {
  target: string;
  index: number;
  kind: string;
  /** 'ok', a WhittleErrorCode, 'untyped' or 'invalid'. */
  outcome: string;
  ms: number;
  inputBytes: number;
  allocBytes: number;
  allocPeak: number;
  overAllocated: boolean;
  /** For findings: the error's name and message (first line). */
  message?: string;
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`.split('\n')[0]!.slice(0, 300);
  return String(err).slice(0, 300);
}

export function runCase(target: FuzzTarget, seed: number, index: number): CaseResult {
  let generated: ReturnType<FuzzTarget['generate']>;
  try {
    generated = target.generate(caseRng(seed, target.name, index), index);
  } catch (err) {
    // A bug in the fuzzer, not in the parser: reported apart so it is fixed, never counted as a pass.
    return {
      target: target.name,
      index,
      kind: 'generate',
      outcome: 'fuzzer-error',
      ms: 0,
      inputBytes: 0,
      allocBytes: 0,
      allocPeak: 0,
      overAllocated: false,
      message: describe(err),
    };
  }
  const { input, bytes, kind } = generated;
  resetAlloc();
  const t0 = performance.now();
  let outcome = 'ok';
  let message: string | undefined;
  try {
    target.run(input);
  } catch (err) {
    if (err instanceof WhittleError) {
      outcome = err.code;
      // INTERNAL is Whittle's own "a bug": typed, but still a finding worth reading.
      if (err.code === 'INTERNAL') message = describe(err);
    } else if (err instanceof InvalidResult) {
      outcome = 'invalid';
      message = err.message;
    } else {
      outcome = 'untyped';
      message = describe(err);
    }
  }
  const ms = performance.now() - t0;
  const alloc = allocStats();
  const overAllocated = alloc.total > bytes * target.allocFactor + ALLOC_SLACK_BYTES;
  return {
    target: target.name,
    index,
    kind,
    outcome,
    ms,
    inputBytes: bytes,
    allocBytes: alloc.total,
    allocPeak: alloc.peak,
    overAllocated,
    ...(message !== undefined
      ? { message }
      : overAllocated
        ? { message: `allocated ${alloc.total} bytes (peak ${alloc.peak}) for ${bytes} input bytes` }
        : {}),
  };
}
