/**
 * The decode kernels' WebAssembly instance and the memory it works in: one growable memory,
 * allocated by this class (first fit over a free list, 16-byte aligned for v128 loads), so
 * weights, KV caches and scratch buffers live where the kernels read them without a copy per
 * call. Views are made fresh from `memory.buffer` on every call: growing the memory detaches
 * every view made before.
 *
 * @example
 * const heap = KernelHeap.create();
 * const x = heap.alloc(576 * 4);
 * heap.f32(x, 576).set(row);
 * heap.kernels.rmsNorm(x, gamma, y, 576, 1e-5);
 */
import { WhittleError } from '../../core/errors.ts';
import { DECODE_KERNELS_SHARED_WASM, DECODE_KERNELS_WASM } from './decode-kernels.wasm.ts';

/** The exports of workers/kernels/assembly/decode.ts (pointers are byte offsets into the heap). */
export interface DecodeKernels {
  quantizeActivations(x: number, q: number, K: number, Kpad: number): number;
  gemvInt8(w: number, scales: number, q: number, qScale: number, bias: number, y: number, Npad: number, Kpad: number): void;
  gemvF32(w: number, x: number, bias: number, y: number, Npad: number, Kpad: number): void;
  gemvBf16(w: number, x: number, bias: number, y: number, Npad: number, Kpad: number): void;
  rmsNorm(x: number, gamma: number, y: number, n: number, eps: number): void;
  addInPlace(a: number, b: number, n: number): void;
  rope(x: number, cos: number, sin: number, heads: number, hs: number): void;
  siluMul(gu: number, y: number, F: number): void;
  attend(
    q: number,
    keys: number,
    values: number,
    out: number,
    scores: number,
    H: number,
    KV: number,
    hs: number,
    T: number,
    cap: number,
  ): void;
}

const PAGE = 65536;
/** The first page is the module's own (its static data, if it ever has any); allocations start after it. */
const BASE = PAGE;
/** wasm32's limit: 4 GiB. */
const MAX_PAGES = 65536;
const ALIGN = 16;

/** Compiled modules, by build: over an ordinary memory, and over a shared one (null: this engine cannot run it). */
const compiled = new Map<boolean, WebAssembly.Module | null>();

function bytesOf(base64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(base64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** The compiled kernels, or null where this engine has no WebAssembly SIMD (or threads, for `shared`); checked once. */
function kernelModule(shared = false): WebAssembly.Module | null {
  if (!compiled.has(shared)) {
    const bytes = bytesOf(shared ? DECODE_KERNELS_SHARED_WASM : DECODE_KERNELS_WASM);
    compiled.set(shared, typeof WebAssembly === 'object' && WebAssembly.validate(bytes) ? new WebAssembly.Module(bytes) : null);
  }
  return compiled.get(shared)!;
}

/** Whether this JavaScript engine runs the decode kernels (WebAssembly with SIMD). */
export function kernelsSupported(): boolean {
  return kernelModule() !== null;
}

export class KernelHeap {
  private top = BASE;
  /** The highest address ever allocated: bytes below it may be dirty (freed and returned to `top`). */
  private highWater = BASE;
  /** Free blocks below `top`, by start, never adjacent (coalesced). */
  private readonly freeBlocks: { start: number; size: number }[] = [];
  private readonly sizes = new Map<number, number>();

  private constructor(
    readonly memory: WebAssembly.Memory,
    readonly module: WebAssembly.Module,
    readonly kernels: DecodeKernels,
    /** Over a shared memory, which a helper thread can work in too (kernel-threads.ts). */
    readonly shared: boolean,
  ) {}

  /**
   * A heap and an instance of the kernels in it. `shared`: over a SharedArrayBuffer-backed
   * memory (for KernelThreads), where this engine allows one (cross-origin isolation in a
   * browser); otherwise, or if that fails, an ordinary one.
   */
  static create(options: { shared?: boolean } = {}): KernelHeap {
    if (options.shared && typeof SharedArrayBuffer !== 'undefined') {
      const module = kernelModule(true);
      if (module) {
        try {
          const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES, shared: true });
          const instance = new WebAssembly.Instance(module, { env: { memory } });
          return new KernelHeap(memory, module, instance.exports as unknown as DecodeKernels, true);
        } catch {
          // No room to reserve a shared 4 GiB memory here (or no threads): one thread it is.
        }
      }
    }
    const module = kernelModule();
    if (!module) throw new WhittleError('UNSUPPORTED', 'the decode kernels need WebAssembly SIMD, which this engine lacks');
    const memory = new WebAssembly.Memory({ initial: 2, maximum: MAX_PAGES });
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    return new KernelHeap(memory, module, instance.exports as unknown as DecodeKernels, false);
  }

  /** Bytes the memory holds (its size, allocated or not). */
  get reservedBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** A block of at least `bytes` (16-byte aligned, zeroed), grown into the memory when no free block fits. */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    const i = this.freeBlocks.findIndex((b) => b.size >= size);
    let ptr: number;
    if (i >= 0) {
      const block = this.freeBlocks[i]!;
      ptr = block.start;
      if (block.size === size) this.freeBlocks.splice(i, 1);
      else this.freeBlocks[i] = { start: block.start + size, size: block.size - size };
      new Uint8Array(this.memory.buffer, ptr, size).fill(0);
    } else {
      ptr = this.top;
      const end = ptr + size;
      if (end > this.memory.buffer.byteLength) {
        const pages = Math.ceil((end - this.memory.buffer.byteLength) / PAGE);
        if (this.memory.buffer.byteLength / PAGE + pages > MAX_PAGES) {
          throw new WhittleError('OUT_OF_MEMORY', `the decode kernels' memory would pass 4 GiB (${end} bytes)`, { bytes: end });
        }
        try {
          this.memory.grow(pages);
        } catch (err) {
          throw new WhittleError(
            'OUT_OF_MEMORY',
            `could not grow the decode kernels' memory to ${end} bytes`,
            { bytes: end },
            { cause: err },
          );
        }
      }
      // Fresh pages are zero; a range below the high-water mark was used before.
      if (ptr < this.highWater) new Uint8Array(this.memory.buffer, ptr, Math.min(end, this.highWater) - ptr).fill(0);
      this.top = end;
      this.highWater = Math.max(this.highWater, end);
    }
    this.sizes.set(ptr, size);
    return ptr;
  }

  /** Returns a block from `alloc`. */
  free(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new WhittleError('INTERNAL', `kernel heap: ${ptr} is not an allocated block`);
    this.sizes.delete(ptr);
    let start = ptr;
    let length = size;
    // Coalesce with the free neighbours, then give the top back if the block ends there.
    let at = this.freeBlocks.findIndex((b) => b.start > start);
    if (at < 0) at = this.freeBlocks.length;
    const next = this.freeBlocks[at];
    if (next && next.start === start + length) {
      length += next.size;
      this.freeBlocks.splice(at, 1);
    }
    const prev = this.freeBlocks[at - 1];
    if (prev && prev.start + prev.size === start) {
      start = prev.start;
      length += prev.size;
      this.freeBlocks.splice(at - 1, 1);
      at--;
    }
    if (start + length === this.top) this.top = start;
    else this.freeBlocks.splice(at, 0, { start, size: length });
  }

  f32(ptr: number, length: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, length);
  }

  i8(ptr: number, length: number): Int8Array {
    return new Int8Array(this.memory.buffer, ptr, length);
  }

  u16(ptr: number, length: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, length);
  }

  i16(ptr: number, length: number): Int16Array {
    return new Int16Array(this.memory.buffer, ptr, length);
  }

  /** A new block holding `values` (its length in floats). */
  allocF32(values: Float32Array): number {
    const ptr = this.alloc(values.byteLength);
    this.f32(ptr, values.length).set(values);
    return ptr;
  }
}
