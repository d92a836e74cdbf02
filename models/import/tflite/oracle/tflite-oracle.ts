/**
 * TEST-ONLY oracle: the real TFLite interpreter (tfjs-tflite's WASM build of TFLite, with its
 * own kernels) run in plain Node. It keeps resource-variable state across `infer()` calls,
 * like the streaming codec. It only runs a model's subgraph 0, so `swapSubgraphs` makes
 * another subgraph the first one without changing any content.
 *
 * The emscripten glue is untyped; the loose types stay in this file.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

/** The subset of the embind API we use (names from tflite_web_api_client.js). */
interface OracleTensor {
  name: string;
  dataType: string;
  shape: string;
  data(): Float32Array | Int32Array | Int8Array | Uint8Array;
  delete?(): void;
}
interface CppRunner {
  GetInputs(): { size(): number; get(i: number): OracleTensor; delete(): void };
  GetOutputs(): { size(): number; get(i: number): OracleTensor; delete(): void };
  Infer(): boolean;
  delete(): void;
}
interface TfliteModule {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  TFLiteWebModelRunner: {
    CreateFromBufferAndOptions(ptr: number, len: number, opts: { numThreads: number; enableProfiling: boolean; maxProfilingBufferEntries: number }): {
      ok(): boolean;
      errorMessage(): string;
      value(): CppRunner;
    };
  };
}

let modulePromise: Promise<TfliteModule> | null = null;

/** Loads the SIMD, single-threaded TFLite WASM build once per process. */
export function loadTfliteModule(): Promise<TfliteModule> {
  if (!modulePromise) {
    const dir = join(dirname(require.resolve('@tensorflow/tfjs-tflite/package.json')), 'wasm');
    const factory = require(join(dir, 'tflite_web_api_cc_simd.js')) as (m: { wasmBinary: Uint8Array; print?: (s: string) => void; printErr?: (s: string) => void }) => Promise<TfliteModule>;
    const wasmBinary = readFileSync(join(dir, 'tflite_web_api_cc_simd.wasm'));
    modulePromise = factory({ wasmBinary, print: () => {}, printErr: () => {} });
  }
  return modulePromise;
}

export class OracleModel {
  private constructor(
    private readonly mod: TfliteModule,
    private readonly runner: CppRunner,
    private readonly ptr: number,
  ) {}

  // Tensor views are fetched per call: the interpreter may (re)allocate buffers on Infer().
  private get inputs(): OracleTensor[] {
    return list(this.runner.GetInputs());
  }
  private get outputs(): OracleTensor[] {
    return list(this.runner.GetOutputs());
  }

  static async create(bytes: Uint8Array): Promise<OracleModel> {
    const mod = await loadTfliteModule();
    const ptr = mod._malloc(bytes.length);
    mod.HEAPU8.set(bytes, ptr);
    const res = mod.TFLiteWebModelRunner.CreateFromBufferAndOptions(ptr, bytes.length, { numThreads: 1, enableProfiling: false, maxProfilingBufferEntries: 1024 });
    if (!res.ok()) throw new Error(`TFLite oracle: ${res.errorMessage()}`);
    return new OracleModel(mod, res.value(), ptr);
  }

  inputNames(): string[] {
    return this.inputs.map((t) => `${t.name}:${t.dataType}[${t.shape}]`);
  }
  outputNames(): string[] {
    return this.outputs.map((t) => `${t.name}:${t.dataType}[${t.shape}]`);
  }

  /** Copies inputs (by position) in, runs one step, copies outputs out. */
  run(inputs: (Float32Array | Int32Array)[]): (Float32Array | Int32Array)[] {
    const ins = this.inputs;
    inputs.forEach((data, i) => {
      const t = ins[i];
      if (!t) throw new Error(`TFLite oracle: no input ${i}`);
      t.data().set(data);
    });
    if (!this.runner.Infer()) throw new Error('TFLite oracle: Infer() failed');
    return this.outputs.map((t) => {
      const d = t.data();
      return d instanceof Int32Array ? d.slice() : Float32Array.from(d);
    });
  }

  dispose(): void {
    this.runner.delete();
    this.mod._free(this.ptr);
  }
}

function list(v: { size(): number; get(i: number): OracleTensor; delete(): void }): OracleTensor[] {
  const out = Array.from({ length: v.size() }, (_, i) => v.get(i));
  v.delete();
  return out;
}

export { swapSubgraphs } from './swap.ts';
export { withSubgraphOutputs } from './with-outputs.ts';
