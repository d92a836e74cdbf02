/**
 * A second thread for the decode kernels: while the caller computes the first rows of a
 * matrix-vector product, a helper thread computes the rest, over the same shared WebAssembly
 * memory. A decode step is bound by memory bandwidth, which two cores nearly double on the
 * machines measured (bench/RESULTS.md, "Decode kernels"); the handshake is a few atomics in a
 * shared control block (the helper spins briefly between products, then sleeps in
 * Atomics.wait), so a step pays microseconds per product, not a message round trip.
 *
 * The helper is spawned from a small inline script (a Blob URL in a browser, `eval` in Node's
 * worker_threads): it needs no file of its own, so bundlers have nothing to copy. Where that
 * fails (no SharedArrayBuffer without cross-origin isolation, a CSP that forbids blob: workers)
 * `start` returns null and the kernels run on the caller's thread alone.
 *
 * @example
 * const threads = await KernelThreads.start(heap);   // null: one thread
 * threads?.gemvInt8(w, scales, q, qScale, bias, y, Npad, Kpad); // rows split between the two
 */
import type { KernelHeap } from './kernel-heap.ts';
// Types only: the module itself is taken from process.getBuiltinModule at run time (spawnHelper).
import type * as NodeWorkerThreads from 'node:worker_threads';

/** Control block, Int32 slots: the job counter (-1: stop), the last job done, ready, the function, its arguments. */
const SEQ = 0;
const DONE = 1;
const READY = 2;
const FN = 3;
const ARGS = 4; // 7 pointers / sizes: slots 4..10
const QSCALE = 11; // Float32
const SLOTS = 12;

/** Busy-wait iterations before the helper sleeps: covers the gaps between products of a step. */
const SPIN = 200_000;
/** Busy-wait iterations of the caller for the helper's half before it sleeps on it. */
const JOIN_SPIN = 20_000;
/** How long the caller waits for the helper's half before giving up on it. */
const STALL_MS = 5_000;

/** Matrices smaller than this (weights) run on the caller's thread alone: the handshake would cost more than it saves. */
export const SPLIT_MIN_WEIGHTS = 64 * 1024;

/** The helper's whole program (plain JavaScript, run as a classic worker script or Node eval). */
const HELPER = `
const start = ({ module, memory, control }) => {
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports;
  const c = new Int32Array(control);
  const f = new Float32Array(control);
  let seen = 0;
  Atomics.store(c, ${READY}, 1);
  Atomics.notify(c, ${READY});
  for (;;) {
    let spins = 0;
    while (Atomics.load(c, ${SEQ}) === seen) if (++spins > ${SPIN}) Atomics.wait(c, ${SEQ}, seen);
    seen = Atomics.load(c, ${SEQ});
    if (seen < 0) return;
    const a = ${ARGS};
    if (c[${FN}] === 0) k.gemvInt8(c[a] >>> 0, c[a + 1] >>> 0, c[a + 2] >>> 0, f[${QSCALE}], c[a + 3] >>> 0, c[a + 4] >>> 0, c[a + 5], c[a + 6]);
    else if (c[${FN}] === 1) k.gemvF32(c[a] >>> 0, c[a + 2] >>> 0, c[a + 3] >>> 0, c[a + 4] >>> 0, c[a + 5], c[a + 6]);
    else k.gemvBf16(c[a] >>> 0, c[a + 2] >>> 0, c[a + 3] >>> 0, c[a + 4] >>> 0, c[a + 5], c[a + 6]);
    Atomics.store(c, ${DONE}, seen);
    Atomics.notify(c, ${DONE});
  }
};
if (typeof require === 'function') require('node:worker_threads').parentPort.once('message', start);
else self.onmessage = (e) => start(e.data);
`;

/** What either kind of worker gives back: a way to post the start message and to stop it. */
interface Helper {
  post(message: unknown): void;
  terminate(): void;
}

const isNode =
  typeof process !== 'undefined' &&
  typeof process.versions?.node === 'string' &&
  typeof window === 'undefined' &&
  typeof self === 'undefined';

function spawnHelper(): Helper {
  if (isNode) {
    // process.getBuiltinModule (Node >= 20.16) rather than an import: no bundler sees a Node module to resolve.
    const { Worker } = (process as unknown as { getBuiltinModule(id: string): unknown }).getBuiltinModule(
      'node:worker_threads',
    ) as typeof NodeWorkerThreads;
    const worker = new Worker(HELPER, { eval: true });
    worker.unref();
    return { post: (m) => worker.postMessage(m), terminate: () => void worker.terminate() };
  }
  const url = URL.createObjectURL(new Blob([HELPER], { type: 'text/javascript' }));
  try {
    const worker = new Worker(url);
    return { post: (m) => worker.postMessage(m), terminate: () => worker.terminate() };
  } finally {
    URL.revokeObjectURL(url);
  }
}

export class KernelThreads {
  private seq = 0;
  private canWait = true;
  private readonly c: Int32Array;
  private readonly f: Float32Array;

  private constructor(
    private readonly heap: KernelHeap,
    private helper: Helper | null,
    control: SharedArrayBuffer,
  ) {
    this.c = new Int32Array(control);
    this.f = new Float32Array(control);
  }

  /**
   * A helper thread over `heap`'s memory (which must be shared: KernelHeap.create({ shared: true })),
   * or null where one cannot start or does not report ready within a second.
   */
  static async start(heap: KernelHeap): Promise<KernelThreads | null> {
    if (!heap.shared || typeof SharedArrayBuffer === 'undefined') return null;
    const control = new SharedArrayBuffer(SLOTS * 4);
    let helper: Helper;
    try {
      helper = spawnHelper();
    } catch {
      return null;
    }
    const threads = new KernelThreads(heap, helper, control);
    helper.post({ module: heap.module, memory: heap.memory, control });
    const c = threads.c;
    const deadline = Date.now() + 1000;
    while (Atomics.load(c, READY) !== 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    if (Atomics.load(c, READY) !== 1) {
      threads.stop();
      return null;
    }
    return threads;
  }

  /** Whether the helper still runs (false after `stop`, or after it stalled). */
  get running(): boolean {
    return this.helper !== null;
  }

  /** gemvInt8 (assembly/decode.ts) with rows split between the caller and the helper. */
  gemvInt8(w: number, scales: number, q: number, qScale: number, bias: number, y: number, Npad: number, Kpad: number): void {
    const k = this.heap.kernels;
    const mine = this.split(Npad, Kpad);
    if (mine === Npad) return k.gemvInt8(w, scales, q, qScale, bias, y, Npad, Kpad);
    const rest = [w + mine * Kpad, scales + mine * 4, q, bias ? bias + mine * 4 : 0, y + mine * 4, Npad - mine, Kpad] as const;
    this.f[QSCALE] = qScale;
    this.post(0, rest);
    k.gemvInt8(w, scales, q, qScale, bias, y, mine, Kpad);
    if (!this.join()) k.gemvInt8(rest[0], rest[1], rest[2], qScale, rest[3], rest[4], rest[5], rest[6]);
  }

  /** gemvF32 with rows split between the caller and the helper. */
  gemvF32(w: number, x: number, bias: number, y: number, Npad: number, Kpad: number): void {
    this.splitFloat(1, 4, this.heap.kernels.gemvF32, w, x, bias, y, Npad, Kpad);
  }

  /** gemvBf16 with rows split between the caller and the helper. */
  gemvBf16(w: number, x: number, bias: number, y: number, Npad: number, Kpad: number): void {
    this.splitFloat(2, 2, this.heap.kernels.gemvBf16, w, x, bias, y, Npad, Kpad);
  }

  /** Stops the helper (the kernels keep working on the caller's thread). */
  stop(): void {
    Atomics.store(this.c, SEQ, -1);
    Atomics.notify(this.c, SEQ);
    this.helper?.terminate();
    this.helper = null;
  }

  /**
   * A float-activation product (`fn`: the helper's code for it; `bytesPerWeight` of its blocked
   * weights, 4 rows at a time) with rows split between the caller and the helper.
   */
  private splitFloat(
    fn: number,
    bytesPerWeight: number,
    run: (w: number, x: number, bias: number, y: number, Npad: number, Kpad: number) => void,
    w: number,
    x: number,
    bias: number,
    y: number,
    Npad: number,
    Kpad: number,
  ): void {
    const mine = this.split(Npad, Kpad);
    if (mine === Npad) return run(w, x, bias, y, Npad, Kpad);
    const rest = [w + mine * Kpad * bytesPerWeight, 0, x, bias ? bias + mine * 4 : 0, y + mine * 4, Npad - mine, Kpad] as const;
    this.post(fn, rest);
    run(w, x, bias, y, mine, Kpad);
    if (!this.join()) run(rest[0], rest[2], rest[3], rest[4], rest[5], rest[6]);
  }

  /** Rows the caller keeps: half (a multiple of 4), or all of a small matrix or without a helper. */
  private split(Npad: number, Kpad: number): number {
    if (!this.helper || Npad < 8 || Npad * Kpad < SPLIT_MIN_WEIGHTS) return Npad;
    return Math.ceil(Npad / 8) * 4;
  }

  private post(fn: number, args: readonly number[]): void {
    this.c[FN] = fn;
    args.forEach((v, i) => (this.c[ARGS + i] = v | 0));
    this.seq = (this.seq % 0x3fffffff) + 1;
    Atomics.store(this.c, SEQ, this.seq);
    Atomics.notify(this.c, SEQ);
  }

  /**
   * Waits for the helper's half (it runs about as long as the caller's, so a spin). False when
   * the helper stalled (a thread the browser suspended or killed): it is stopped and the caller
   * computes that half itself, so the step still completes.
   */
  private join(): boolean {
    let spins = 0;
    const started = Date.now();
    for (let done = Atomics.load(this.c, DONE); done !== this.seq; done = Atomics.load(this.c, DONE)) {
      if (++spins < JOIN_SPIN) continue;
      // The helper is late (descheduled on a busy machine): sleep until it signals rather than
      // take the core it needs. Atomics.wait is refused on a browser's main thread: spin there.
      if (this.canWait) {
        try {
          Atomics.wait(this.c, DONE, done, 1);
        } catch {
          this.canWait = false;
        }
      }
      if (Date.now() - started > STALL_MS) {
        this.stop();
        return false;
      }
    }
    return true;
  }
}
