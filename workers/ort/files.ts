/**
 * Where onnxruntime-web's runtime files (the Emscripten `.mjs` glue and its `.wasm`) are loaded
 * from, by default: next to this module, resolved with `new URL(literal, import.meta.url)`.
 *
 * Why literals: Vite, webpack 5, Rollup and esbuild plugins all recognise exactly this form and
 * copy the file into the consumer's build, so an app that installs Whittle serves the runtime
 * from its own origin with no configuration (no CDN, and cross-origin isolation keeps working).
 * In this repository the literals point into node_modules; the library build
 * (scripts/build-lib.ts) copies the four files into `dist/ort/` and rewrites these paths to
 * `../ort/<file>`. The glue stays a separate file rather than being bundled: onnxruntime starts
 * its pthread workers from the glue's own URL, and a glue inlined into an app chunk would
 * start the app's chunk in every pthread worker.
 *
 * Each backend has its own pair: the plain WASM build (14 MB) for `wasm`, the asyncify build
 * with WebGPU (26 MB) for `webgpu`; only the pair in use is fetched.
 */
import type { Backend } from './runtime.ts';

export interface RuntimeFiles {
  mjs: string;
  wasm: string;
}

export function defaultRuntimeFiles(backend: Backend): RuntimeFiles {
  if (backend === 'webgpu') {
    return {
      mjs: new URL('../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.mjs', import.meta.url).href,
      wasm: new URL('../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm', import.meta.url).href,
    };
  }
  return {
    mjs: new URL('../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.mjs', import.meta.url).href,
    wasm: new URL('../../node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm', import.meta.url).href,
  };
}
