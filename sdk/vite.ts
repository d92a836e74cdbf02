/**
 * `whittle/vite`: the Vite plugin for apps that use Whittle.
 *
 * Production builds need nothing from it: Whittle's workers and onnxruntime's runtime files are
 * referenced with `new URL(..., import.meta.url)`, which Vite bundles and copies on its own.
 * What it does:
 * - keeps `whittle` out of dependency pre-bundling in dev: the pre-bundler moves code into
 *   `node_modules/.vite/deps/`, where those relative URLs would point at files that are not there;
 * - emits workers as ES modules (`worker.format: 'es'`), the format Whittle's workers are written in;
 * - keeps Whittle's files (the AudioWorklets are small) out of Vite's data: URL inlining, so a
 *   strict Content-Security-Policy needs no `data:` exception;
 * - with `crossOriginIsolation: true`, sends COOP/COEP headers from the dev and preview servers,
 *   so `crossOriginIsolated` is true and onnxruntime runs WASM with threads. Your production
 *   host must send the same two headers (see README: "Cross-origin isolation").
 *
 * @example
 * // vite.config.ts
 * import { defineConfig } from 'vite';
 * import whittle from 'whittle/vite';
 * export default defineConfig({ plugins: [whittle({ crossOriginIsolation: true })] });
 */
import type { Plugin } from 'vite';

/** Files of the installed package (or of this repository's build). */
const WHITTLE_DIST = /[\\/]whittle[\\/]dist[\\/]/;

export interface WhittleViteOptions {
  /** Send COOP/COEP from the dev and preview servers so WASM can use threads. Default false. */
  crossOriginIsolation?: boolean;
}

/** The two headers that make a page cross-origin isolated (SharedArrayBuffer, WASM threads). */
export const CROSS_ORIGIN_ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
});

/**
 * The plugin; see the module comment for what it changes.
 *
 * @example
 * export default defineConfig({ plugins: [whittle()] });
 */
export default function whittle(options: WhittleViteOptions = {}): Plugin {
  const headers = options.crossOriginIsolation ? { ...CROSS_ORIGIN_ISOLATION_HEADERS } : {};
  return {
    name: 'whittle',
    config(user) {
      return {
        optimizeDeps: { exclude: ['whittle'] },
        worker: { format: 'es' as const },
        server: { headers },
        preview: { headers },
        // Vite inlines small assets as data: URLs; Whittle's AudioWorklet files are small, and a
        // data: module would need a Content-Security-Policy exception. Keep them as files.
        ...(user.build?.assetsInlineLimit === undefined ? { build: { assetsInlineLimit: (file: string) => (WHITTLE_DIST.test(file) ? false : undefined) } } : {}),
      };
    },
  };
}
