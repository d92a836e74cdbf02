/**
 * Whittle's one error type. `code` is stable and meant for `switch`; `message` is for people.
 * Errors cross the worker boundary intact (see `toWire`/`fromWire` and `sdk/rpc-errors.ts`).
 *
 * @example
 * try { await store.ensure(manifest) } catch (e) {
 *   if (e instanceof WhittleError && e.code === 'QUOTA') showStorageHelp();
 * }
 */
export type WhittleErrorCode =
  /** Bytes did not match the sha256 or size the manifest promised. */
  | 'INTEGRITY'
  /** Not enough storage quota (or over the store's byte budget) for the download. */
  | 'QUOTA'
  /** The network failed and retries with resume did not recover. */
  | 'NETWORK'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A model file or manifest is malformed, truncated or inconsistent. */
  | 'BAD_MODEL'
  /** The requested backend/feature is not available here. */
  | 'UNSUPPORTED'
  /** The worker running the model died; the next call starts a fresh one. */
  | 'WORKER_DIED'
  /** Bad arguments from the caller (e.g. a prompt longer than the context). */
  | 'INVALID_ARGUMENT'
  /** A storage backend failed for a reason other than quota. */
  | 'STORAGE'
  /**
   * The WebGPU device was lost (driver reset, GPU process crash, another tab's reset, or
   * `device.destroy()`). Calls in flight reject with it; the next call starts a fresh worker on a
   * fresh device (or on WASM with `Whittle.create({ deviceLoss: 'wasm' })`).
   */
  | 'DEVICE_LOST'
  /**
   * onnxruntime ran out of memory: the WASM heap could not grow (4 GiB is its ceiling) or the
   * GPU refused an allocation. The model or the request is too large for this device; a smaller
   * plan, shorter context, compressed weights or the other backend may fit.
   */
  | 'OUT_OF_MEMORY'
  /** Anything else: a bug in Whittle or in a dependency. */
  | 'INTERNAL';

export const WHITTLE_ERROR_CODES: readonly WhittleErrorCode[] = [
  'INTEGRITY',
  'QUOTA',
  'NETWORK',
  'ABORTED',
  'BAD_MODEL',
  'UNSUPPORTED',
  'WORKER_DIED',
  'INVALID_ARGUMENT',
  'STORAGE',
  'DEVICE_LOST',
  'OUT_OF_MEMORY',
  'INTERNAL',
];

/**
 * JSON-safe extra facts (file name, expected/actual hash, bytes needed...).
 *
 * @example
 * catch (e) { if (e instanceof WhittleError && e.code === 'QUOTA') console.log(e.details.neededBytes); }
 */
export type ErrorDetails = Record<string, string | number | boolean | null>;

/**
 * Every error Whittle throws or rejects with: a stable `code`, a message for people and JSON-safe
 * `details`. It crosses the worker boundary intact (core/rpc-errors.ts), so `instanceof` and
 * `code` work on errors raised inside a worker.
 *
 * @example
 * try {
 *   await w.text('https://host/models/m/');
 * } catch (e) {
 *   if (e instanceof WhittleError && e.code === 'INTEGRITY') showRetry(e.message);
 *   else throw e;
 * }
 */
export class WhittleError extends Error {
  override readonly name = 'WhittleError';
  constructor(
    readonly code: WhittleErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The structured-clone-safe form of an error, as it travels between threads. */
export interface WireError {
  readonly whittle: true;
  readonly code: WhittleErrorCode;
  readonly message: string;
  readonly details: ErrorDetails;
  readonly stack?: string;
}

export function toWire(err: unknown): WireError {
  if (err instanceof WhittleError) {
    return { whittle: true, code: err.code, message: err.message, details: err.details, stack: err.stack };
  }
  if (isAbort(err)) return { whittle: true, code: 'ABORTED', message: 'The operation was aborted', details: {} };
  const message = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  return {
    whittle: true,
    code: 'INTERNAL',
    message,
    details: {},
    stack: err instanceof Error ? err.stack : undefined,
  };
}

export function fromWire(wire: WireError): WhittleError {
  const code = WHITTLE_ERROR_CODES.includes(wire.code) ? wire.code : 'INTERNAL';
  const err = new WhittleError(code, wire.message, wire.details);
  if (wire.stack) err.stack = wire.stack;
  return err;
}

export function isWireError(value: unknown): value is WireError {
  return typeof value === 'object' && value !== null && (value as { whittle?: unknown }).whittle === true;
}

/** Normalizes anything thrown into a WhittleError (abort errors become ABORTED). */
export function asWhittleError(err: unknown, fallback: WhittleErrorCode = 'INTERNAL'): WhittleError {
  if (err instanceof WhittleError) return err;
  if (isAbort(err)) return new WhittleError('ABORTED', 'The operation was aborted', {}, { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new WhittleError(fallback, message, {}, { cause: err });
}

function isAbort(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError';
}

/** Throws ABORTED if the signal has fired. Call between steps of long operations. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new WhittleError('ABORTED', 'The operation was aborted', {});
}
