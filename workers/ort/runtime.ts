/**
 * The only module that imports onnxruntime-web. Everything else asks it for sessions.
 *
 * Which build gets loaded matters: the WebGPU-capable build is larger, slower to start and
 * slower on WASM, so a `wasm` backend loads the plain WASM build. In Node (tests, the CLI)
 * the package's `node` export is used; it runs the same WASM kernels.
 */
import type * as Ort from 'onnxruntime-web';
import { WhittleError } from '../../core/errors.ts';
import { GraphBuilder, type BuiltModel } from '../../models/onnx/builder.ts';
import { deviceLost, lossAfterFailure, trackWebGpuSession } from './device-loss.ts';
import { ortError } from './errors.ts';
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
 * Loads (once) the onnxruntime-web build for `config.backend`, applies the global env and starts
 * its WASM runtime (the `.mjs` glue and the `.wasm`), so a runtime that cannot load fails here,
 * as NETWORK (a file that did not arrive) or UNSUPPORTED (one that arrived and would not run),
 * instead of as a BAD_MODEL at the first session. onnxruntime's env is process-global and frozen
 * after the first session, so asking for a different backend or thread count later is an error
 * rather than a silent no-op.
 *
 * A failed load is not cached: the next call tries again. Within one worker that retries only
 * the import; onnxruntime itself refuses to start again after a failed start (its WASM factory
 * remembers the failure for the life of the module), so the retry that fetches the runtime
 * files again is the SDK's next load, which starts a fresh worker (sdk/client/worker-client.ts
 * ends a worker whose load failed).
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
  const ort = startOrt(config);
  const entry = { config, ort };
  loaded = entry;
  ort.catch(() => {
    if (loaded === entry) loaded = null;
  });
  return ort;
}

async function startOrt(config: RuntimeConfig): Promise<OrtModule> {
  let ort: OrtModule;
  try {
    ort = await importBuild(config.backend);
  } catch (err) {
    throw runtimeLoadError(err, `could not import onnxruntime-web's ${config.backend} build`);
  }
  ort.env.logLevel = 'error';
  ort.env.wasm.numThreads = config.numThreads;
  if (!isNode) ort.env.wasm.wasmPaths = config.wasmPaths ?? defaultRuntimeFiles(config.backend);
  try {
    // The runtime files load on the first session: one of a single Identity node, on the WASM
    // EP (the WebGPU build has it too, and it does not start a GPU device).
    const probe = await ort.InferenceSession.create(identityModel(), { executionProviders: ['wasm'] });
    await probe.release();
  } catch (err) {
    const files = typeof ort.env.wasm.wasmPaths === 'string' ? ort.env.wasm.wasmPaths : JSON.stringify(ort.env.wasm.wasmPaths ?? 'the package');
    throw runtimeLoadError(err, `onnxruntime-web's WASM runtime (from ${files}) did not start`);
  }
  return ort;
}

/** NETWORK when the runtime's files did not arrive (a retry may work); UNSUPPORTED when they arrived and would not run here. */
function runtimeLoadError(err: unknown, what: string): WhittleError {
  if (err instanceof WhittleError) return err;
  const text = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  const network = /fetch|network|dynamically imported module|importing a module script failed|HTTP|404|status code|net::/i.test(text);
  return new WhittleError(network ? 'NETWORK' : 'UNSUPPORTED', `${what}: ${text}`, {}, { cause: err });
}

/** The smallest valid model: y = Identity(x). */
function identityModel(): Uint8Array {
  const g = new GraphBuilder('whittle-runtime-probe');
  g.output(g.op('Identity', [g.input('x', 'float32', [1])]), 'float32', [1]);
  return g.build().model;
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

/**
 * Creates a session for a model from the graph builder, on the configured backend. Its failures,
 * and those of its `run`s, are WhittleErrors mapped by ortError (workers/ort/errors.ts):
 * OUT_OF_MEMORY, DEVICE_LOST, else BAD_MODEL for a graph onnxruntime rejects and INTERNAL for a
 * failed run. Every session Whittle runs comes from here, so this is the one place they are mapped.
 */
export async function createSession(
  ort: OrtModule,
  built: BuiltModel,
  backend: Backend,
  extra: Ort.InferenceSession.SessionOptions = {},
): Promise<Ort.InferenceSession> {
  const lost = deviceLost();
  if (lost) throw lost;
  let session: Ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(built.model, {
      executionProviders: [backend],
      graphOptimizationLevel: 'all',
      externalData: built.externalData,
      ...extra,
    });
  } catch (err) {
    const mapped = ortError(err, 'create', backend);
    throw (backend === 'webgpu' ? await lossAfterFailure(mapped) : null) ?? mapped;
  }
  if (backend === 'webgpu') await trackWebGpuSession(ort, session);
  // Wrapped on the instance rather than at each call site: engines call session.run directly.
  // The class's own run is looked up per call, so a spy on the prototype (tests) still sees it.
  const proto = Object.getPrototypeOf(session) as { run: (...args: unknown[]) => Promise<Ort.InferenceSession.ReturnType> };
  const run = async (...args: unknown[]): Promise<Ort.InferenceSession.ReturnType> => {
    const before = deviceLost();
    if (before) throw before;
    try {
      return await proto.run.apply(session, args);
    } catch (err) {
      const mapped = ortError(err, 'run', backend);
      throw (backend === 'webgpu' ? await lossAfterFailure(mapped) : null) ?? mapped;
    }
  };
  Object.defineProperty(session, 'run', { value: run, configurable: true, writable: true });
  return session;
}
