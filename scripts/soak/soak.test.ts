/**
 * The CI soak (the long run is `npm run soak`): 400 generations with plan switches, speculation,
 * aborts and sampling, 30 s of live codec streaming with bitrate switches and loss and 15 s more
 * under a CPU-hog tab, in headless Chromium on WASM. Asserts what must hold however busy the
 * machine: no untyped error, no error at all but the aborts asked for, every greedy answer the
 * same for the same plan and prompt (speculation included), no memory growth beyond the bound
 * (growth.ts: the fitted growth within max(3 sigma of the residuals, 1 MiB, 1% of the start)),
 * and frames flowing. Latency and underruns are reported, not asserted (timing, not correctness).
 */
import { describe, expect, it } from 'vitest';
import { runSoak, SHORT, type SoakResult } from './run.ts';

describe('soak (short run)', () => {
  let r: SoakResult;

  it('runs text generations and live codec streams in Chromium', async () => {
    r = await runSoak({ ...SHORT, port: 0, log: () => undefined });
    expect(r.text.generations).toBe(SHORT.generations);
    expect(r.codec).not.toBeNull(); // the live session runs on WASM
    expect(r.gpuBuffers).toBeNull(); // no GPU buffers on WASM
  }, 600_000);

  it('raises no error but the aborts asked for, and no untyped one', () => {
    expect(r.text.errors).toEqual({ typed: {}, untyped: [] });
    expect(r.codec!.quiet.errors).toEqual({ typed: {}, untyped: [] });
    expect(r.codec!.hog.errors).toEqual({ typed: {}, untyped: [] });
    expect(r.text.kinds.aborted).toBe(SHORT.generations / 4);
  });

  it('gives the same greedy answer for the same plan and prompt, speculation included', () => {
    expect(r.text.wrongAnswers).toEqual([]);
    expect(r.text.planSwitches).toBeGreaterThanOrEqual(SHORT.generations / SHORT.sampleEvery);
  });

  it('keeps the WASM heap and the JS heap flat', () => {
    expect(r.text.memory.jsHeap.source).toBe('measureUserAgentSpecificMemory'); // the page is cross-origin isolated
    expect(r.text.memory.wasmHeap.verdict).toMatchObject({ flat: true });
    expect(r.text.memory.jsHeap.verdict).toMatchObject({ flat: true });
    expect(r.codec!.memory.jsHeap.verdict).toMatchObject({ flat: true });
    expect(r.codec!.memory.jsHeap.verdict.points).toBeGreaterThanOrEqual(3);
  });

  it('streams: frames captured and played, bitrate switched, losses concealed', () => {
    for (const run of [r.codec!.quiet, r.codec!.hog]) {
      expect(run.frames).toBeGreaterThan(0.5 * run.seconds * 50); // 50 frames a second when the machine keeps up
      expect(run.switches).toBeGreaterThan(0);
    }
    expect(r.codec!.quiet.concealed).toBeGreaterThan(0);
  });
});
