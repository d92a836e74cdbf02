/**
 * Allocation probe: while installed, every `new ArrayBuffer(n)`, `new Float32Array(n)` (and the
 * other typed arrays, their `from`/`of`, and `ArrayBuffer#slice`/`TypedArray#slice`) adds its
 * byte size to a counter, so a case can be judged against the bytes it was given. A header that
 * claims terabytes shows up here as a huge request (or as a RangeError, an untyped error) even
 * when the allocation fails.
 *
 * Why constructor proxies and not process.memoryUsage(): a garbage collection between two
 * samples hides a transient allocation, and sampling costs more than the small cases themselves.
 * What it cannot see: buffers Node or V8 allocate natively (TextEncoder#encode, Buffer pools) and
 * plain JS arrays; the parsers fuzzed here allocate their large outputs as typed arrays.
 */

const TYPED = [
  'Int8Array',
  'Uint8Array',
  'Uint8ClampedArray',
  'Int16Array',
  'Uint16Array',
  'Int32Array',
  'Uint32Array',
  'Float32Array',
  'Float64Array',
  'BigInt64Array',
  'BigUint64Array',
] as const;

export interface AllocStats {
  /** Bytes requested in total since reset(). */
  total: number;
  /** The largest single request. */
  peak: number;
}

const stats: AllocStats = { total: 0, peak: 0 };
let installed = false;

function record(bytes: number): void {
  if (!(bytes > 0)) return;
  stats.total += bytes;
  if (bytes > stats.peak) stats.peak = bytes;
}

/** Byte size a typed-array constructor call will allocate (0 for a view on an existing buffer). */
function typedBytes(args: unknown[], bytesPer: number): number {
  const first = args[0];
  if (typeof first === 'number') return first * bytesPer;
  if (first instanceof ArrayBuffer || (typeof SharedArrayBuffer !== 'undefined' && first instanceof SharedArrayBuffer)) return 0;
  if (typeof first === 'object' && first !== null) {
    const length = (first as { length?: unknown }).length;
    if (typeof length === 'number') return length * bytesPer;
  }
  return 0;
}

/** Replaces the global constructors with counting proxies (idempotent; for a fuzz worker only). */
export function installAllocProbe(): void {
  if (installed) return;
  installed = true;
  const g = globalThis as unknown as Record<string, unknown>;
  const OriginalArrayBuffer = ArrayBuffer;
  g.ArrayBuffer = new Proxy(OriginalArrayBuffer, {
    construct(target, args, newTarget) {
      record(Number(args[0] ?? 0));
      return Reflect.construct(target, args, newTarget === g.ArrayBuffer ? target : newTarget) as object;
    },
  });
  const bufferSlice = OriginalArrayBuffer.prototype.slice;
  OriginalArrayBuffer.prototype.slice = function slice(this: ArrayBuffer, begin?: number, end?: number) {
    const out = bufferSlice.call(this, begin, end);
    record(out.byteLength);
    return out;
  };
  for (const name of TYPED) {
    const Original = g[name] as (new (...args: unknown[]) => ArrayBufferView) & { BYTES_PER_ELEMENT: number };
    const proxy: unknown = new Proxy(Original, {
      construct(target, args, newTarget) {
        record(typedBytes(args, target.BYTES_PER_ELEMENT));
        return Reflect.construct(target, args, newTarget === proxy ? target : newTarget) as object;
      },
    });
    g[name] = proxy;
  }
  // %TypedArray%.prototype.slice allocates a copy; subarray does not.
  const typedProto = Object.getPrototypeOf(Uint8Array.prototype) as { slice: (this: Uint8Array, a?: number, b?: number) => Uint8Array };
  const typedSlice = typedProto.slice;
  typedProto.slice = function slice(this: Uint8Array, begin?: number, end?: number) {
    const out = typedSlice.call(this, begin, end);
    record(out.byteLength);
    return out;
  };
}

export function resetAlloc(): void {
  stats.total = 0;
  stats.peak = 0;
}

export function allocStats(): AllocStats {
  return { ...stats };
}
