/**
 * The TFLite reference in the browser: tfjs-tflite's own WASM build of TFLite (XNNPACK, SIMD,
 * one thread), loaded as the classic script it ships as, from /tflite/ (vite.config.ts).
 * Benchmark-only; Whittle never runs it.
 */
interface RefTensor {
  name: string;
  data(): Float32Array | Int32Array | Int8Array | Uint8Array;
}
interface RefRunner {
  GetInputs(): { size(): number; get(i: number): RefTensor; delete(): void };
  GetOutputs(): { size(): number; get(i: number): RefTensor; delete(): void };
  Infer(): boolean;
}
interface RefModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  TFLiteWebModelRunner: {
    CreateFromBufferAndOptions(ptr: number, len: number, o: { numThreads: number; enableProfiling: boolean; maxProfilingBufferEntries: number }): { ok(): boolean; errorMessage(): string; value(): RefRunner };
  };
}
type Factory = (m: { locateFile: (f: string) => string }) => Promise<RefModule>;

let modulePromise: Promise<RefModule> | null = null;

function loadModule(): Promise<RefModule> {
  modulePromise ??= new Promise<RefModule>((resolve, reject) => {
    const script = document.createElement('script');
    script.src = '/tflite/tflite_web_api_cc_simd.js';
    script.onload = () => {
      const factory = (window as unknown as { tflite_web_api_ModuleFactory: Factory }).tflite_web_api_ModuleFactory;
      factory({ locateFile: (f) => `/tflite/${f}` }).then(resolve, reject);
    };
    script.onerror = () => reject(new Error('could not load the TFLite reference runtime'));
    document.head.append(script);
  });
  return modulePromise;
}

/** One interpreter with its resource-variable state kept across runs. */
export class TfliteReference {
  private constructor(private readonly runner: RefRunner) {}

  static async create(bytes: Uint8Array): Promise<TfliteReference> {
    const mod = await loadModule();
    const ptr = mod._malloc(bytes.length);
    mod.HEAPU8.set(bytes, ptr);
    const res = mod.TFLiteWebModelRunner.CreateFromBufferAndOptions(ptr, bytes.length, { numThreads: 1, enableProfiling: false, maxProfilingBufferEntries: 1024 });
    if (!res.ok()) throw new Error(`TFLite: ${res.errorMessage()}`);
    return new TfliteReference(res.value());
  }

  /** Inputs by position, or by (part of) their tensor name. */
  run(inputs: (Float32Array | Int32Array)[] | Record<string, Float32Array | Int32Array>): (Float32Array | Int32Array)[] {
    const ins = this.runner.GetInputs();
    const tensors = Array.from({ length: ins.size() }, (_, i) => ins.get(i));
    ins.delete();
    if (Array.isArray(inputs)) inputs.forEach((data, i) => tensors[i]!.data().set(data));
    else {
      for (const [key, data] of Object.entries(inputs)) {
        const t = tensors.find((x) => x.name.includes(key));
        if (!t) throw new Error(`TFLite: no input named like ${key} (have ${tensors.map((x) => x.name).join(', ')})`);
        t.data().set(data);
      }
    }
    if (!this.runner.Infer()) throw new Error('TFLite Infer() failed');
    const outs = this.runner.GetOutputs();
    const result = Array.from({ length: outs.size() }, (_, i) => {
      const d = outs.get(i).data();
      return d instanceof Int32Array ? d.slice() : Float32Array.from(d);
    });
    outs.delete();
    return result;
  }
}
