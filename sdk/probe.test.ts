import { describe, expect, it } from 'vitest';
import { chooseBackend, softwareAdapterReason, type AdapterFacts, type Capabilities } from './probe.ts';
import { WhittleError } from '../core/errors.ts';

const caps = (webgpu: boolean, isolated: boolean, cores = 8, adapter: AdapterFacts = {}): Capabilities => ({
  webgpu: { available: webgpu, features: [], shaderF16: false, ...adapter },
  crossOriginIsolated: isolated,
  hardwareConcurrency: cores,
});

// Adapter info as browsers report it (Chromium 150's SwiftShader read from this machine; the
// others from Dawn's, Mesa's and Windows' adapter names).
const ADAPTERS: Record<string, { facts: AdapterFacts; software: RegExp | null }> = {
  'Chromium SwiftShader': { facts: { vendor: 'google', architecture: 'swiftshader', device: '', description: '', isFallbackAdapter: true }, software: /SwiftShader/ },
  'SwiftShader, no fallback flag (older Chrome)': { facts: { vendor: 'google', architecture: 'swiftshader' }, software: /SwiftShader \(architecture 'swiftshader'\)/ },
  'SwiftShader named only in the description': { facts: { vendor: 'google', architecture: '', description: 'SwiftShader Device (Subzero)' }, software: /SwiftShader/ },
  'Mesa llvmpipe': { facts: { vendor: 'mesa', architecture: '', description: 'llvmpipe (LLVM 15.0.7, 256 bits)' }, software: /llvmpipe/ },
  'Vulkan lavapipe': { facts: { vendor: 'mesa', architecture: 'lavapipe' }, software: /lavapipe/ },
  'Windows WARP': { facts: { vendor: 'microsoft', architecture: '', description: 'Microsoft Basic Render Driver' }, software: /Microsoft Basic Render Driver/ },
  'flagged fallback, names masked': { facts: { vendor: '', architecture: '', isFallbackAdapter: true }, software: /fallback adapter/ },
  'NVIDIA': { facts: { vendor: 'nvidia', architecture: 'ampere', description: 'NVIDIA GeForce RTX 3080', isFallbackAdapter: false }, software: null },
  'Apple': { facts: { vendor: 'apple', architecture: 'metal-3' }, software: null },
  'Intel integrated': { facts: { vendor: 'intel', architecture: 'gen-12lp', description: 'Intel(R) Iris(R) Xe Graphics' }, software: null },
  'masked, not flagged': { facts: { vendor: '', architecture: '' }, software: null },
  // "warp" only as a whole word: a hardware name containing the letters is not WARP.
  'a name containing "warp" inside a word': { facts: { vendor: 'acme', architecture: 'warpdrive' }, software: null },
};

describe('softwareAdapterReason', () => {
  for (const [name, { facts, software }] of Object.entries(ADAPTERS)) {
    it(`${name}: ${software ? 'software' : 'hardware'}`, () => {
      const reason = softwareAdapterReason(facts);
      if (software) expect(reason).toMatch(software);
      else expect(reason).toBeNull();
      if (software) expect(reason).toMatch(/software/);
    });
  }
});

describe('chooseBackend', () => {
  it('prefers WebGPU when a hardware adapter exists, and names it', () => {
    const choice = chooseBackend(caps(true, true, 8, ADAPTERS['NVIDIA']!.facts));
    expect(choice.backend).toBe('webgpu');
    expect(choice.reason).toBe('a hardware WebGPU adapter is available (nvidia ampere)');
  });
  it('falls back to threaded WASM when isolated, single-threaded otherwise', () => {
    expect(chooseBackend(caps(false, true, 8))).toMatchObject({ backend: 'wasm', numThreads: 4 });
    expect(chooseBackend(caps(false, true, 2))).toMatchObject({ backend: 'wasm', numThreads: 2 });
    expect(chooseBackend(caps(false, false, 8))).toMatchObject({ backend: 'wasm', numThreads: 1 });
    expect(chooseBackend(caps(false, true, 8)).reason).toBe('no WebGPU adapter; WASM with 4 threads (cross-origin isolated)');
  });
  it('auto never picks a software adapter: WASM, with the adapter named in the reason', () => {
    for (const [name, { facts, software }] of Object.entries(ADAPTERS)) {
      const choice = chooseBackend(caps(true, true, 2, facts), 'auto');
      expect(choice.backend, name).toBe(software ? 'wasm' : 'webgpu');
      if (software) {
        expect(choice.reason, name).toMatch(software);
        expect(choice.reason, name).toContain('software');
        expect(choice.reason, name).toContain('WASM with 2 threads');
      }
    }
  });
  it('forcing webgpu still uses a software adapter, and says what it is', () => {
    const choice = chooseBackend(caps(true, true, 2, ADAPTERS['Chromium SwiftShader']!.facts), 'webgpu');
    expect(choice.backend).toBe('webgpu');
    expect(choice.reason).toMatch(/^forced; note that the WebGPU adapter is SwiftShader .*software/);
  });
  it('trusts the probe when it concluded software without naming facts', () => {
    const given: Capabilities = { ...caps(true, false), webgpu: { ...caps(true, false).webgpu, software: true } };
    expect(chooseBackend(given).backend).toBe('wasm');
    const explained: Capabilities = { ...caps(true, false), webgpu: { ...caps(true, false).webgpu, software: true, softwareReason: 'measured on the CPU' } };
    expect(chooseBackend(explained).reason).toContain('measured on the CPU');
  });
  it('honours a forced backend and refuses WebGPU without an adapter', () => {
    expect(chooseBackend(caps(true, false), 'wasm').backend).toBe('wasm');
    expect(chooseBackend(caps(true, false), 'wasm').reason).toMatch(/^forced; WASM with 1 thread/);
    expect(() => chooseBackend(caps(false, false), 'webgpu')).toThrow(WhittleError);
  });
  it('refuses an unknown preference with INVALID_ARGUMENT', () => {
    expect(() => chooseBackend(caps(true, false), 'gpu' as never)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});
