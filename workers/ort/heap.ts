/**
 * How big onnxruntime's WASM heap is. onnxruntime-web does not expose its module, but its builds
 * (all threaded, even at one thread) create their memory in JS with `new WebAssembly.Memory`, so
 * watching that constructor finds it. A WASM memory only grows, so its size is also the peak the
 * heap reached: the number that decides whether a model fits the 4 GiB a wasm32 heap can address.
 *
 * @example
 * watchWasmHeap();             // before onnxruntime starts (TextService.init does it)
 * const ort = await loadOrt(config);
 * wasmHeapBytes();              // e.g. 936_000_000 after a 135M fp32 load
 */
const seen: WeakRef<WebAssembly.Memory>[] = [];
let watching = false;

/** Starts watching WebAssembly.Memory constructions in this realm (idempotent). */
export function watchWasmHeap(): void {
  if (watching) return;
  watching = true;
  const Original = WebAssembly.Memory;
  // A Proxy keeps `instanceof WebAssembly.Memory`, statics and the prototype exactly as they were.
  WebAssembly.Memory = new Proxy(Original, {
    construct(target, args, newTarget) {
      const memory = Reflect.construct(target, args, newTarget) as WebAssembly.Memory;
      seen.push(new WeakRef(memory));
      return memory;
    },
  });
}

/** Bytes of the largest live WASM memory created since watchWasmHeap(); null if none was seen. */
export function wasmHeapBytes(): number | null {
  let largest: number | null = null;
  for (const ref of seen) {
    const memory = ref.deref();
    if (memory) largest = Math.max(largest ?? 0, memory.buffer.byteLength);
  }
  return largest;
}
