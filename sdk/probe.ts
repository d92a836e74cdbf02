/**
 * What this browser can run, and the backend Whittle picks from it.
 *
 * A WebGPU adapter is not always a GPU: without one, Chromium (with --enable-unsafe-webgpu),
 * Mesa (llvmpipe/lavapipe) and Windows (WARP, "Microsoft Basic Render Driver") offer adapters
 * that run on the CPU. onnxruntime's WebGPU kernels on such an adapter are an order of magnitude
 * or two slower than its WASM kernels (3 tokens/s against hundreds for the playground's model),
 * so `auto` treats a software adapter like no adapter, and says so in `choice.reason`.
 *
 * Detection is by what the browser reports, not by timing: the fallback flag
 * (`adapter.info.isFallbackAdapter`, or the older `adapter.isFallbackAdapter`) and the names in
 * the adapter info. There is no timed compute probe: every software implementation a browser
 * ships either sets the fallback flag or names itself (Chromium 150 reports SwiftShader as
 * `{ vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true }`), while a probe
 * would cost a device, a shader compile and a readback on every `Whittle.create`, would be noisy
 * on a busy machine, and could not tell a slow integrated GPU from a CPU anyway. A miss costs
 * speed, not correctness, and `backend: 'wasm'` (or `'webgpu'`) overrides the choice.
 *
 * @example
 * const caps = await probeCapabilities();
 * console.log(caps.webgpu.software, caps.webgpu.architecture); // true 'swiftshader' on a machine without a GPU
 * const choice = chooseBackend(caps, 'auto'); // { backend: 'wasm', numThreads: 4, reason: '…software…' }
 */
import { WhittleError } from '../core/errors.ts';

/**
 * Which backend to run models on: `'auto'` picks a hardware WebGPU adapter when there is one
 * and WASM otherwise; `'webgpu'` and `'wasm'` force one.
 *
 * @example
 * const w = await Whittle.create({ backend: 'wasm' satisfies BackendPreference });
 */
export type BackendPreference = 'auto' | 'webgpu' | 'wasm';

/**
 * What a WebGPU adapter says about itself (all optional: browsers mask some of it). The input
 * of {@link softwareAdapterReason}.
 *
 * @example
 * const facts: AdapterFacts = { vendor: 'mesa', description: 'llvmpipe (LLVM 15.0.7, 256 bits)' };
 * softwareAdapterReason(facts); // "the WebGPU adapter is llvmpipe (…), a software renderer …"
 */
export interface AdapterFacts {
  /** `GPUAdapterInfo.vendor`, e.g. 'nvidia', 'google'. */
  vendor?: string;
  /** `GPUAdapterInfo.architecture`, e.g. 'ampere', 'swiftshader'. */
  architecture?: string;
  /** `GPUAdapterInfo.device`: a vendor-specific id, often empty. */
  device?: string;
  /** `GPUAdapterInfo.description`: the driver's name for the adapter, often empty. */
  description?: string;
  /** The browser's own fallback flag (`info.isFallbackAdapter` or the older `adapter.isFallbackAdapter`). */
  isFallbackAdapter?: boolean;
}

/**
 * What the capability probe found.
 *
 * @example
 * const { webgpu, crossOriginIsolated } = (await Whittle.create()).capabilities;
 * if (webgpu.software) console.log(`WebGPU runs on the CPU here: ${webgpu.softwareReason}`);
 */
export interface Capabilities {
  webgpu: AdapterFacts & {
    /** Whether the browser returned a WebGPU adapter at all (software or not). */
    available: boolean;
    /** The adapter runs on the CPU (fallback flag or a known software renderer); `auto` then picks WASM. */
    software?: boolean;
    /** Why the adapter counts as software, in words (set when `software` is true). */
    softwareReason?: string;
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

/**
 * Names that software WebGPU/Vulkan/D3D implementations report in their adapter info, with
 * the name a developer knows them by. Matched case-insensitively against every info field.
 */
const SOFTWARE_RENDERERS: { pattern: RegExp; name: string }[] = [
  { pattern: /swiftshader/i, name: 'SwiftShader' },
  { pattern: /lavapipe/i, name: 'lavapipe' },
  { pattern: /llvmpipe/i, name: 'llvmpipe' },
  { pattern: /softpipe/i, name: 'softpipe' },
  { pattern: /microsoft basic render/i, name: 'Microsoft Basic Render Driver (WARP)' },
  { pattern: /\bwarp\b/i, name: 'WARP' },
];

/**
 * Why an adapter is a software (CPU) implementation, or null when nothing says so. Pure: it
 * reads only the facts given, so it is what `chooseBackend` and the probe share.
 *
 * @example
 * softwareAdapterReason({ vendor: 'google', architecture: 'swiftshader' });
 * // "the WebGPU adapter is SwiftShader (architecture 'swiftshader'), a software renderer that runs on the CPU"
 * softwareAdapterReason({ vendor: 'nvidia', architecture: 'ampere' }); // null
 */
export function softwareAdapterReason(facts: AdapterFacts): string | null {
  for (const field of ['architecture', 'description', 'vendor', 'device'] as const) {
    const value = facts[field];
    if (!value) continue;
    const known = SOFTWARE_RENDERERS.find((r) => r.pattern.test(value));
    if (known) return `the WebGPU adapter is ${known.name} (${field} '${value}'), a software renderer that runs on the CPU`;
  }
  if (facts.isFallbackAdapter) {
    const named = [facts.vendor, facts.architecture].filter(Boolean).join(' ');
    return `the browser marks the WebGPU adapter${named ? ` (${named})` : ''} as a fallback adapter, a software implementation that runs on the CPU`;
  }
  return null;
}

/**
 * Probes WebGPU (adapter, its info, features), cross-origin isolation and cores. Never throws:
 * a browser without WebGPU, or whose driver is blocklisted, simply has `webgpu.available` false.
 *
 * @example
 * const caps = await probeCapabilities();
 * console.log(caps.webgpu.available, caps.webgpu.software, caps.crossOriginIsolated, caps.hardwareConcurrency);
 */
export async function probeCapabilities(): Promise<Capabilities> {
  const nav = navigator as Navigator & { deviceMemory?: number };
  const webgpu: Capabilities['webgpu'] = { available: false, features: [], shaderF16: false };
  const gpu = (nav as Navigator & { gpu?: GPU }).gpu;
  if (gpu) {
    try {
      const adapter = await gpu.requestAdapter();
      if (adapter) {
        // `info` is recent (Chrome 131+); older browsers had the flag on the adapter itself.
        const info = (adapter as GPUAdapter & { info?: Partial<GPUAdapterInfo> }).info;
        const legacyFallback = (adapter as GPUAdapter & { isFallbackAdapter?: boolean }).isFallbackAdapter;
        webgpu.available = true;
        webgpu.features = [...adapter.features].map(String).sort();
        webgpu.shaderF16 = adapter.features.has('shader-f16');
        webgpu.maxBufferSize = adapter.limits.maxBufferSize;
        for (const field of ['vendor', 'architecture', 'device', 'description'] as const) {
          const value = info?.[field];
          if (typeof value === 'string') webgpu[field] = value;
        }
        webgpu.isFallbackAdapter = info?.isFallbackAdapter === true || legacyFallback === true;
        const reason = softwareAdapterReason(webgpu);
        webgpu.software = reason !== null;
        if (reason !== null) webgpu.softwareReason = reason;
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

/**
 * The backend Whittle runs models on, and why.
 *
 * @example
 * const { choice } = await Whittle.create();
 * console.log(`${choice.backend} with ${choice.numThreads} threads: ${choice.reason}`);
 */
export interface BackendChoice {
  backend: 'webgpu' | 'wasm';
  /** WASM threads (also used by the WebGPU EP for CPU-side ops). */
  numThreads: number;
  /** Why this backend, in words (which adapter, why not WebGPU, how many threads and why). */
  reason: string;
}

/**
 * `auto`: WebGPU on a hardware adapter; WASM when there is no adapter or only a software one
 * (threaded when cross-origin isolated). A forced backend is honoured, software adapter or not;
 * forcing `webgpu` without any adapter is `UNSUPPORTED`.
 *
 * @example
 * const choice = chooseBackend(await probeCapabilities(), 'auto', 4);
 * // on a machine whose only adapter is SwiftShader:
 * // { backend: 'wasm', numThreads: 4, reason: "the WebGPU adapter is SwiftShader (…), a software renderer …" }
 */
export function chooseBackend(caps: Capabilities, preference: BackendPreference = 'auto', maxThreads = 4): BackendChoice {
  if (preference !== 'auto' && preference !== 'webgpu' && preference !== 'wasm') {
    throw new WhittleError('INVALID_ARGUMENT', `backend must be 'auto', 'webgpu' or 'wasm', got ${JSON.stringify(preference)}`, { preference: String(preference) });
  }
  const numThreads = caps.crossOriginIsolated ? Math.max(1, Math.min(maxThreads, caps.hardwareConcurrency)) : 1;
  const threads = numThreads > 1 ? `${numThreads} threads (cross-origin isolated)` : '1 thread (not cross-origin isolated)';
  const adapter = caps.webgpu;
  const software = adapter.available ? (adapter.softwareReason ?? softwareAdapterReason(adapter) ?? (adapter.software ? 'the WebGPU adapter is a software renderer that runs on the CPU' : null)) : null;
  if (preference === 'webgpu') {
    if (!adapter.available) throw new WhittleError('UNSUPPORTED', 'WebGPU was requested but this browser has no WebGPU adapter', { preference });
    return { backend: 'webgpu', numThreads, reason: software ? `forced; note that ${software}, usually slower than WASM` : 'forced' };
  }
  if (preference === 'auto' && adapter.available && !software) {
    const named = [adapter.vendor, adapter.architecture].filter(Boolean).join(' ');
    return { backend: 'webgpu', numThreads, reason: `a hardware WebGPU adapter is available${named ? ` (${named})` : ''}` };
  }
  const why = preference === 'wasm' ? 'forced' : software ? `${software}, slower than WASM here (force backend 'webgpu' to use it anyway)` : 'no WebGPU adapter';
  return { backend: 'wasm', numThreads, reason: `${why}; WASM with ${threads}` };
}
