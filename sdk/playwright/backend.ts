/**
 * Which backend the browser under test really offers, and whether that is the one a project
 * targets. The probe runs the SDK's own `probeCapabilities` in a blank page on the app's origin
 * (origin-page.ts), with the cross-origin isolation headers the app's server sends, so WebGPU's
 * adapter and `crossOriginIsolated` are what the app itself will see.
 *
 * @example
 * const report = await probeBackend(page, { origin: 'http://127.0.0.1:5173', target: 'wasm-threads' });
 * if (!report.available) test.skip(true, report.reason);
 */
import type { Page } from '@playwright/test';
import type { Capabilities } from '../probe.ts';
import { openOriginPage, sendsIsolationHeaders } from './origin-page.ts';
import type { WhittleTarget } from './projects.ts';

/**
 * What the fixture found for a project (attached to every test's report as `whittle-backend`).
 *
 * @example
 * test('x', async ({ whittleBackend }) => console.log(whittleBackend.backend, whittleBackend.adapter?.architecture));
 */
export interface BackendReport {
  target: WhittleTarget;
  /** Whether the device offers the target's backend. */
  available: boolean;
  /** Why not (set when `available` is false). */
  reason?: string;
  /** The backend to ask the SDK for (`Whittle.create({ backend })`). */
  backend: 'webgpu' | 'wasm';
  /** The WebGPU adapter, when the browser returned one. */
  adapter?: {
    vendor?: string;
    architecture?: string;
    description?: string;
    features: string[];
    fallback: boolean;
    software: boolean;
    softwareReason?: string;
  };
  crossOriginIsolated: boolean;
  /** Whether the app's server sends COOP/COEP on its start page. */
  serverSendsIsolationHeaders: boolean;
  hardwareConcurrency: number;
  userAgent: string;
}

/**
 * Whether `caps` offer the target's backend, and why not. Pure: what the fixture decides from.
 *
 * @example
 * targetAvailability('webgpu', caps); // { available: false, reason: 'no hardware WebGPU adapter: the WebGPU adapter is SwiftShader …' }
 */
export function targetAvailability(
  target: WhittleTarget,
  caps: Capabilities,
  serverSendsIsolationHeaders = true,
): { available: boolean; reason?: string } {
  const gpu = caps.webgpu;
  switch (target) {
    case 'webgpu':
      if (!gpu.available)
        return {
          available: false,
          reason:
            'no hardware WebGPU adapter: the browser returned no WebGPU adapter (on Linux, is Chromium started with Vulkan and a GPU driver?)',
        };
      if (gpu.software)
        return { available: false, reason: `no hardware WebGPU adapter: ${gpu.softwareReason ?? 'the adapter is a software one'}` };
      return { available: true };
    case 'webgpu-swiftshader':
      if (!gpu.available)
        return {
          available: false,
          reason: 'no WebGPU adapter, not even SwiftShader: start Chromium with --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader',
        };
      return { available: true };
    case 'wasm':
      return { available: true };
    case 'wasm-threads':
      if (!serverSendsIsolationHeaders) {
        return {
          available: false,
          reason:
            "WASM threads need cross-origin isolation, and the app's server does not send Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (whittle/vite: whittle({ crossOriginIsolation: true }))",
        };
      }
      if (!caps.crossOriginIsolated)
        return {
          available: false,
          reason: 'WASM threads need cross-origin isolation, and the page is not crossOriginIsolated although the server sends COOP/COEP',
        };
      return { available: true };
  }
}

/**
 * Probes the device on `origin` for a target. Navigates `page` (to a blank page on the origin);
 * the test navigates to its app afterwards. (`whittleTest` runs it before every test.)
 *
 * @example
 * const report = await probeBackend(page, { origin: 'http://127.0.0.1:4173', target: 'webgpu' });
 * console.log(report.available, report.reason, report.adapter?.architecture);
 */
export async function probeBackend(page: Page, { origin, target }: { origin: string; target: WhittleTarget }): Promise<BackendReport> {
  const start = await page.request.get(origin, { failOnStatusCode: false });
  const serverSendsIsolationHeaders = sendsIsolationHeaders(start.headers());
  await openOriginPage(page, origin, { isolated: serverSendsIsolationHeaders });
  const caps = await page.evaluate(() => globalThis.whittlePlaywright.probe());
  const userAgent = await page.evaluate(() => navigator.userAgent);
  const { available, reason } = targetAvailability(target, caps, serverSendsIsolationHeaders);
  const gpu = caps.webgpu;
  return {
    target,
    available,
    ...(reason !== undefined ? { reason } : {}),
    backend: target.startsWith('webgpu') ? 'webgpu' : 'wasm',
    ...(gpu.available
      ? {
          adapter: {
            ...(gpu.vendor !== undefined ? { vendor: gpu.vendor } : {}),
            ...(gpu.architecture !== undefined ? { architecture: gpu.architecture } : {}),
            ...(gpu.description ? { description: gpu.description } : {}),
            features: gpu.features,
            fallback: gpu.isFallbackAdapter === true,
            software: gpu.software === true,
            ...(gpu.softwareReason ? { softwareReason: gpu.softwareReason } : {}),
          },
        }
      : {}),
    crossOriginIsolated: caps.crossOriginIsolated,
    serverSendsIsolationHeaders,
    hardwareConcurrency: caps.hardwareConcurrency,
    userAgent,
  };
}
