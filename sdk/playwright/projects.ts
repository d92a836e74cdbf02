/**
 * Playwright projects for the four targets a Whittle app runs on, each a Chromium launch preset
 * plus the fixture options that tell `whittleTest` which backend the project is about.
 *
 *   webgpu              a hardware GPU: on Linux the flags that expose WebGPU through Vulkan
 *                       (headless Chromium has it off there); on macOS and Windows Chrome's defaults
 *   webgpu-swiftshader  WebGPU on SwiftShader, Chromium's CPU implementation: CI without a GPU
 *   wasm                onnxruntime's WASM backend, one thread
 *   wasm-threads        WASM with threads: the app's server must send COOP/COEP, and the
 *                       fixture checks that it does and that the page is `crossOriginIsolated`
 *
 * Chromium: Playwright's own by default; set `executablePath` (or WHITTLE_CHROMIUM_PATH) for a
 * system Chromium or Chrome, and `args` (or WHITTLE_CHROMIUM_ARGS, space-separated) for flags
 * your environment needs, such as `--no-sandbox` in a container.
 *
 * @example
 * // playwright.config.ts
 * import { defineConfig } from '@playwright/test';
 * import { projects } from 'whittle/playwright';
 * export default defineConfig({ projects, use: { baseURL: 'http://127.0.0.1:5173' } });
 */
import type { LaunchOptions, PlaywrightTestOptions, PlaywrightWorkerOptions, Project } from '@playwright/test';

/**
 * The backends a project targets (see the top of this file).
 *
 * @example
 * const target: WhittleTarget = 'webgpu-swiftshader';
 */
export type WhittleTarget = 'webgpu' | 'webgpu-swiftshader' | 'wasm' | 'wasm-threads';

/**
 * Every target, in the order `projects` lists them.
 *
 * @example
 * for (const target of WHITTLE_TARGETS) console.log(target, chromiumFlags(target));
 */
export const WHITTLE_TARGETS: readonly WhittleTarget[] = ['webgpu', 'webgpu-swiftshader', 'wasm', 'wasm-threads'];

/**
 * The fixture options of `whittleTest` (set per project by `whittleProject`, or per file with
 * `test.use`).
 *
 * @example
 * test.use({ whittleRequireBackend: true } satisfies Partial<WhittleTestOptions>); // absent backend = failure
 */
export interface WhittleTestOptions {
  /** The backend this project tests. */
  whittleTarget: WhittleTarget;
  /**
   * What happens when the device lacks the target's backend: `false` (default) skips each test
   * with the reason; `true` fails it with the same reason (a GPU job whose GPU went missing).
   */
  whittleRequireBackend: boolean;
  /**
   * How often the backend is probed: `'once'` (default) per worker, project and origin (the
   * browser and its adapter do not change between tests; each test still gets the report and the
   * skip or failure), or `'each-test'` (a fresh probe before every test, for suites that expect
   * the device to change under them, such as a lost GPU).
   */
  whittleProbe: 'once' | 'each-test';
}

/**
 * How `whittleProject` launches Chromium.
 *
 * @example
 * whittleProject('webgpu', { executablePath: '/usr/bin/google-chrome', args: ['--no-sandbox'], require: true } satisfies ProjectOptions);
 */
export interface ProjectOptions {
  /** A Chromium or Chrome binary; default WHITTLE_CHROMIUM_PATH, else Playwright's own Chromium. */
  executablePath?: string;
  /** Extra Chromium flags; default WHITTLE_CHROMIUM_ARGS split on spaces. */
  args?: readonly string[];
  /** Fail (instead of skip) when the backend is absent; see `WhittleTestOptions.whittleRequireBackend`. */
  require?: boolean;
  /** The project's name; default the target's. */
  name?: string;
  /** The OS whose flags to use; default this one's (`process.platform`). */
  platform?: NodeJS.Platform;
}

/**
 * The Chromium flags a target needs on a platform (beyond the caller's own).
 *
 * @example
 * chromiumFlags('webgpu', 'linux'); // ['--enable-unsafe-webgpu', '--enable-features=Vulkan', …]
 */
export function chromiumFlags(target: WhittleTarget, platform: NodeJS.Platform = process.platform): string[] {
  switch (target) {
    case 'webgpu':
      // Chrome ships WebGPU on by default on macOS and Windows. On Linux it is behind a flag and
      // needs Vulkan; headless Chromium would otherwise use SwiftShader or no adapter at all.
      return platform === 'linux'
        ? ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=vulkan', '--ignore-gpu-blocklist']
        : [];
    case 'webgpu-swiftshader':
      // Forces the CPU adapter even where a GPU exists, so CI results do not depend on the runner.
      return ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'];
    case 'wasm':
    case 'wasm-threads':
      return [];
  }
}

function envArgs(): string[] {
  return (process.env.WHITTLE_CHROMIUM_ARGS ?? '').split(/\s+/).filter(Boolean);
}

/**
 * One Playwright project for a target: launch options and `whittleTest`'s options.
 *
 * @example
 * projects: [whittleProject('wasm'), whittleProject('webgpu', { require: !!process.env.GPU_RUNNER })]
 */
export function whittleProject(
  target: WhittleTarget,
  options: ProjectOptions = {},
): Project<PlaywrightTestOptions & WhittleTestOptions, PlaywrightWorkerOptions> {
  const executablePath = options.executablePath ?? process.env.WHITTLE_CHROMIUM_PATH;
  const launchOptions: LaunchOptions = {
    args: [...(options.args ?? envArgs()), ...chromiumFlags(target, options.platform)],
    ...(executablePath ? { executablePath } : {}),
  };
  return {
    name: options.name ?? target,
    use: {
      browserName: 'chromium',
      // Playwright's headless shell has no GPU process worth the name; the full Chromium's new
      // headless mode does (ignored when executablePath names a binary).
      ...(target === 'webgpu' && !executablePath ? { channel: 'chromium' } : {}),
      launchOptions,
      whittleTarget: target,
      whittleRequireBackend: options.require ?? false,
    },
  };
}

/**
 * The four projects with default options (Chromium from WHITTLE_CHROMIUM_PATH or Playwright's).
 * Pick with `--project`, or filter: `projects.filter((p) => p.name !== 'webgpu')`.
 *
 * @example
 * export default defineConfig({ projects, webServer: { command: 'npm run preview', url: 'http://127.0.0.1:4173' } });
 */
export const projects = WHITTLE_TARGETS.map((t) => whittleProject(t));
