/**
 * The pure parts of `whittle/playwright`: which targets a device offers (and why not), the
 * Chromium flags per target and platform, and the golden checks' verdicts and messages. The
 * browser parts (probe, seeding) are tested in Chromium by e2e/playwright-preset.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import type { Capabilities } from '../probe.ts';
import { softwareAdapterReason } from '../probe.ts';
import { targetAvailability } from './backend.ts';
import { expectGoldenTokens, expectLogitsClose } from './golden.ts';
import { chromiumFlags, whittleProject, projects, WHITTLE_TARGETS } from './projects.ts';
import { codecRealTimeFactor } from './stats.ts';
import { isOnnxRuntimeNote } from './page-errors.ts';

function caps(webgpu: Partial<Capabilities['webgpu']>, crossOriginIsolated = false): Capabilities {
  const gpu = { available: false, features: [], shaderF16: false, ...webgpu };
  const reason = gpu.available ? softwareAdapterReason(gpu) : null;
  return {
    webgpu: { ...gpu, software: reason !== null, ...(reason ? { softwareReason: reason } : {}) },
    crossOriginIsolated,
    hardwareConcurrency: 2,
  };
}

const swiftshader = caps({ available: true, vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true });
const nvidia = caps({ available: true, vendor: 'nvidia', architecture: 'ampere' });
const none = caps({});

describe('targetAvailability', () => {
  it('webgpu needs a hardware adapter and names the software one it found instead', () => {
    expect(targetAvailability('webgpu', nvidia)).toEqual({ available: true });
    const sw = targetAvailability('webgpu', swiftshader);
    expect(sw.available).toBe(false);
    expect(sw.reason).toMatch(/no hardware WebGPU adapter: the WebGPU adapter is SwiftShader/);
    expect(targetAvailability('webgpu', none).reason).toMatch(/returned no WebGPU adapter/);
  });
  it('webgpu-swiftshader takes any adapter, and says which flags give one', () => {
    expect(targetAvailability('webgpu-swiftshader', swiftshader).available).toBe(true);
    expect(targetAvailability('webgpu-swiftshader', nvidia).available).toBe(true);
    expect(targetAvailability('webgpu-swiftshader', none).reason).toMatch(/--use-webgpu-adapter=swiftshader/);
  });
  it('wasm-threads needs the server headers and an isolated page, with a reason for each', () => {
    expect(targetAvailability('wasm-threads', caps({}, true), true)).toEqual({ available: true });
    expect(targetAvailability('wasm-threads', caps({}, false), false).reason).toMatch(/server does not send Cross-Origin-Opener-Policy/);
    expect(targetAvailability('wasm-threads', caps({}, false), true).reason).toMatch(/not crossOriginIsolated although the server sends/);
    expect(targetAvailability('wasm', none)).toEqual({ available: true });
  });
});

describe('projects', () => {
  it('one per target, named after it, carrying the target as a fixture option', () => {
    expect(projects.map((p) => p.name)).toEqual([...WHITTLE_TARGETS]);
    for (const p of projects) expect((p.use as { whittleTarget: string }).whittleTarget).toBe(p.name);
  });
  it('Linux hardware WebGPU goes through Vulkan; macOS and Windows use Chrome defaults; SwiftShader is forced for CI', () => {
    expect(chromiumFlags('webgpu', 'linux')).toEqual(expect.arrayContaining(['--enable-unsafe-webgpu', '--enable-features=Vulkan']));
    expect(chromiumFlags('webgpu', 'darwin')).toEqual([]);
    expect(chromiumFlags('webgpu', 'win32')).toEqual([]);
    expect(chromiumFlags('webgpu-swiftshader', 'darwin')).toEqual(['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader']);
    expect(chromiumFlags('wasm-threads', 'linux')).toEqual([]);
  });
  it('the user chooses the browser binary, extra flags and whether the backend is required', () => {
    const p = whittleProject('webgpu', {
      executablePath: '/opt/chrome',
      args: ['--no-sandbox'],
      require: true,
      platform: 'linux',
      name: 'gpu',
    });
    expect(p.name).toBe('gpu');
    expect(p.use?.launchOptions?.executablePath).toBe('/opt/chrome');
    expect(p.use?.launchOptions?.args?.[0]).toBe('--no-sandbox');
    expect(p.use?.channel).toBeUndefined(); // a named binary wins over Playwright's channel
    expect((p.use as { whittleRequireBackend: boolean }).whittleRequireBackend).toBe(true);
    expect(whittleProject('webgpu', { platform: 'darwin' }).use?.channel).toBe('chromium');
  });
});

describe('golden checks', () => {
  it('tokens: equal passes; the first difference, a short run or an unasked-for long one throws', () => {
    expect(() => expectGoldenTokens([1, 2, 3], [1, 2, 3])).not.toThrow();
    expect(() => expectGoldenTokens([1, 9, 3], [1, 2, 3])).toThrow(/differ at index 1: got 9, golden 2/);
    expect(() => expectGoldenTokens([1, 2], [1, 2, 3])).toThrow(/got 2 tokens, golden has 3/);
    expect(() => expectGoldenTokens([1, 2, 3, 4], [1, 2, 3])).toThrow(/prefix: true/);
    expect(() => expectGoldenTokens([1, 2, 3, 4], [1, 2, 3], { prefix: true })).not.toThrow();
  });
  it('logits: allclose semantics, the worst index named, non-finite values refused', () => {
    const cmp = expectLogitsClose([1, 2.0001, -3], [1, 2, -3], { atol: 1e-3, rtol: 0 });
    expect(cmp.maxAbsError).toBeCloseTo(1e-4, 6);
    expect(cmp.sameArgmax).toBe(true);
    expect(() => expectLogitsClose([1, 2.1, -3], [1, 2, -3], { atol: 1e-3, rtol: 1e-3 })).toThrow(/at index 1 got 2.1, expected 2/);
    // rtol scales with the reference: 1000.5 vs 1000 is within rtol 1e-3.
    expect(() => expectLogitsClose([1000.5], [1000], { atol: 0, rtol: 1e-3 })).not.toThrow();
    expect(() => expectLogitsClose([NaN], [1])).toThrow(/value 0 is NaN/);
    expect(() => expectLogitsClose([1, 2], [1])).toThrow(/got 2 values, expected 1/);
    expect(() => expectLogitsClose([1], [1], { atol: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
  it('codec real-time factor is wall time over audio time; nonsense input is a typed error', () => {
    expect(codecRealTimeFactor({ samples: 32_000, sampleRate: 16_000, wallMs: 500 })).toBe(0.25);
    expect(() => codecRealTimeFactor({ samples: 0, sampleRate: 16_000, wallMs: 1 })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('page errors', () => {
  it("onnxruntime-web's expected notes are told apart from the app's errors", () => {
    expect(
      isOnnxRuntimeNote(
        'Some nodes were not assigned to the preferred execution providers which may or may not have an negative impact on performance.',
      ),
    ).toBe(true);
    expect(isOnnxRuntimeNote('[W:onnxruntime:, session_state.cc:1280 VerifyEachNodeIsAssignedToAnEp] Rerunning with verbose output')).toBe(true);
    expect(isOnnxRuntimeNote("Failed to fetch dynamically imported module: /ort-wasm-simd-threaded.mjs")).toBe(false);
  });
});
