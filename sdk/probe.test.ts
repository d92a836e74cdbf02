import { describe, expect, it } from 'vitest';
import { chooseBackend, type Capabilities } from './probe.ts';
import { WhittleError } from '../core/errors.ts';

const caps = (webgpu: boolean, isolated: boolean, cores = 8): Capabilities => ({
  webgpu: { available: webgpu, features: [], shaderF16: false },
  crossOriginIsolated: isolated,
  hardwareConcurrency: cores,
});

describe('chooseBackend', () => {
  it('prefers WebGPU when an adapter exists', () => {
    expect(chooseBackend(caps(true, true)).backend).toBe('webgpu');
  });
  it('falls back to threaded WASM when isolated, single-threaded otherwise', () => {
    expect(chooseBackend(caps(false, true, 8))).toMatchObject({ backend: 'wasm', numThreads: 4 });
    expect(chooseBackend(caps(false, true, 2))).toMatchObject({ backend: 'wasm', numThreads: 2 });
    expect(chooseBackend(caps(false, false, 8))).toMatchObject({ backend: 'wasm', numThreads: 1 });
  });
  it('honours a forced backend and refuses WebGPU without an adapter', () => {
    expect(chooseBackend(caps(true, false), 'wasm').backend).toBe('wasm');
    expect(() => chooseBackend(caps(false, false), 'webgpu')).toThrow(WhittleError);
  });
});
