/**
 * The only module that imports onnxruntime-web. Everything else asks it for sessions.
 *
 * Which build gets loaded matters: the WebGPU-capable build is larger, slower to start and
 * slower on WASM, so a `wasm` backend loads the plain WASM build. In Node (tests, the CLI)
 * the package's `node` export is used; it runs the same WASM kernels.
 */
import type * as Ort from 'onnxruntime-web';
import { WhittleError } from '../../core/errors.ts';
import type { BuiltModel } from '../../models/onnx/builder.ts';
import { defaultRuntimeFiles, type RuntimeFiles } from './files.ts';

export type OrtModule = typeof Ort;
/**
 * The backend a model runs on (onnxruntime-web's execution provider).
 *
 * @example
 * const backend: Backend = lm.info.runtime.backend; // 'webgpu' | 'wasm'
 */
export type Backend = 'webgpu' | 'wasm';

export interface RuntimeConfig {
  backend: Backend;
  /** WASM threads; 1 = no pthread workers. Only honoured when the context is cross-origin isolated. */
  numThreads: number;
  /**
   * Where onnxruntime-web's .mjs/.wasm files are served: a URL prefix ending in `/`, or the two
   * files' URLs. Default: the copies shipped next to the worker (files.ts), which bundlers copy.
   */
  wasmPaths?: string | RuntimeFiles;
}

/**
 * What the runtime actually ended up with in the worker (threads fall back to 1 without isolation).
 *
 * @example
 * const { backend, numThreads, crossOriginIsolated } = lm.info.runtime;
 */
export interface RuntimeInfo {
  backend: Backend;
  numThreads: number;
  crossOriginIsolated: boolean;
  build: 'webgpu' | 'wasm' | 'node';
}

const isNode = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && typeof window === 'undefined' && typeof self === 'undefined';

let loaded: { config: RuntimeConfig; ort: Promise<OrtModule> } | null = null;

/**
 * Loads (once) the onnxruntime-web build for `config.backend` and applies the global env.
 * onnxruntime's env is process-global and frozen after the first session, so asking for a
 * different backend or thread count later is an error rather than a silent no-op.
 */
export function loadOrt(config: RuntimeConfig): Promise<OrtModule> {
  if (loaded) {
    const same = loaded.config.backend === config.backend && loaded.config.numThreads === config.numThreads;
    if (!same) {
      throw new WhittleError(
        'UNSUPPORTED',
        `onnxruntime is already initialized for ${loaded.config.backend} with ${loaded.config.numThreads} thread(s) in this worker; start another worker for ${config.backend}/${config.numThreads}`,
      );
    }
    return loaded.ort;
  }
  const ort = importBuild(config.backend).then((ort) => {
    ort.env.logLevel = 'error';
    ort.env.wasm.numThreads = config.numThreads;
    if (!isNode) ort.env.wasm.wasmPaths = config.wasmPaths ?? defaultRuntimeFiles(config.backend);
    return ort;
  });
  loaded = { config, ort };
  return ort;
}

async function importBuild(backend: Backend): Promise<OrtModule> {
  if (isNode) {
    if (backend === 'webgpu') throw new WhittleError('UNSUPPORTED', 'WebGPU is not available in Node; use the wasm backend');
    // A specifier in a variable: bundlers leave it alone, so browser builds do not carry the Node build.
    const nodeEntry = 'onnxruntime-web';
    return (await import(/* @vite-ignore */ /* webpackIgnore: true */ nodeEntry)) as OrtModule;
  }
  if (backend === 'webgpu') {
    if (!('gpu' in navigator)) throw new WhittleError('UNSUPPORTED', 'WebGPU is not available in this context (no navigator.gpu)');
    return (await import('onnxruntime-web/webgpu')) as OrtModule;
  }
  return (await import('onnxruntime-web/wasm')) as OrtModule;
}

/**
 * What onnxruntime is really using. Read after the first session exists: onnxruntime resets
 * `env.wasm.numThreads` to 1 when threads cannot work (no cross-origin isolation).
 */
export function runtimeInfo(config: RuntimeConfig, ort?: OrtModule): RuntimeInfo {
  const isolated = typeof crossOriginIsolated === 'boolean' ? crossOriginIsolated : isNode;
  const threads = ort?.env.wasm.numThreads ?? config.numThreads;
  return {
    backend: config.backend,
    numThreads: isolated || isNode ? threads || 1 : 1,
    crossOriginIsolated: isolated,
    build: isNode ? 'node' : config.backend,
  };
}

/** Creates a session for a model from the graph builder, on the configured backend. */
export async function createSession(
  ort: OrtModule,
  built: BuiltModel,
  backend: Backend,
  extra: Ort.InferenceSession.SessionOptions = {},
): Promise<Ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(built.model, {
      executionProviders: [backend],
      graphOptimizationLevel: 'all',
      externalData: built.externalData,
      ...extra,
    });
  } catch (err) {
    throw new WhittleError('BAD_MODEL', `onnxruntime could not create a ${backend} session: ${err instanceof Error ? err.message : String(err)}`, { backend }, { cause: err });
  }
}
