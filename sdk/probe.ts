/**
 * What this browser can run, and the backend Whittle picks from it.
 *
 * @example
 * const caps = await probeCapabilities();
 * const choice = chooseBackend(caps, 'auto'); // { backend: 'webgpu' | 'wasm', numThreads }
 */
import { WhittleError } from '../core/errors.ts';

export type BackendPreference = 'auto' | 'webgpu' | 'wasm';

export interface Capabilities {
  webgpu: {
    available: boolean;
    /** Adapter description, when there is one. */
    vendor?: string;
    architecture?: string;
    /** Whether the adapter is a software fallback (SwiftShader etc.). */
    isFallbackAdapter?: boolean;
    features: string[];
    shaderF16: boolean;
    maxBufferSize?: number;
  };
  /** SharedArrayBuffer + WASM threads usable (the page is served with COOP/COEP). */
  crossOriginIsolated: boolean;
  hardwareConcurrency: number;
  /** navigator.deviceMemory (GiB, coarse), where the browser exposes it. */
  deviceMemoryGiB?: number;
}

export async function probeCapabilities(): Promise<Capabilities> {
  const nav = navigator as Navigator & { deviceMemory?: number };
  const webgpu: Capabilities['webgpu'] = { available: false, features: [], shaderF16: false };
  const gpu = (nav as Navigator & { gpu?: GPU }).gpu;
  if (gpu) {
    try {
      const adapter = await gpu.requestAdapter();
      if (adapter) {
        const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
        webgpu.available = true;
        webgpu.features = [...adapter.features].map(String).sort();
        webgpu.shaderF16 = adapter.features.has('shader-f16');
        webgpu.maxBufferSize = adapter.limits.maxBufferSize;
        if (info) {
          webgpu.vendor = info.vendor;
          webgpu.architecture = info.architecture;
        }
        webgpu.isFallbackAdapter = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
      }
    } catch {
      // requestAdapter can throw on blocklisted drivers; that simply means no WebGPU.
    }
  }
  return {
    webgpu,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: nav.hardwareConcurrency ?? 1,
    ...(nav.deviceMemory !== undefined ? { deviceMemoryGiB: nav.deviceMemory } : {}),
  };
}

export interface BackendChoice {
  backend: 'webgpu' | 'wasm';
  /** WASM threads (also used by the WebGPU EP for CPU-side ops). */
  numThreads: number;
  reason: string;
}

/** WebGPU when an adapter exists (or when forced), else WASM: threaded when cross-origin isolated. */
export function chooseBackend(caps: Capabilities, preference: BackendPreference = 'auto', maxThreads = 4): BackendChoice {
  const numThreads = caps.crossOriginIsolated ? Math.max(1, Math.min(maxThreads, caps.hardwareConcurrency)) : 1;
  if (preference === 'webgpu' && !caps.webgpu.available) {
    throw new WhittleError('UNSUPPORTED', 'WebGPU was requested but this browser has no WebGPU adapter', { preference });
  }
  if (preference === 'webgpu' || (preference === 'auto' && caps.webgpu.available)) {
    return { backend: 'webgpu', numThreads, reason: preference === 'auto' ? 'a WebGPU adapter is available' : 'forced' };
  }
  const why = preference === 'wasm' ? 'forced' : 'no WebGPU adapter';
  const threads = numThreads > 1 ? `${numThreads} threads (cross-origin isolated)` : '1 thread (not cross-origin isolated)';
  return { backend: 'wasm', numThreads, reason: `${why}; WASM with ${threads}` };
}
