/**
 * Dropout decoding through the SDK in a worker (WASM and WebGPU): the dropout variant's graphs
 * compile in the worker, the members run, the stats and per-step votes cross the worker
 * boundary, and `members: 0` is plain decoding token for token; on WebGPU the context
 * uncertainty (reduced inside the graphs) equals WASM's. Numerics are checked against
 * the reference forward in Node (workers/text/dropout-decode.test.ts); this is the browser path.
 */
import { test, expect } from './fixtures.ts';

test('dropout decoding runs in the worker, reports its ensemble, and members: 0 is plain decoding', async ({ harness, whittleBackend }) => {
  const r = await harness.evaluate(async (backend) => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend, storeName: `dropout-${backend}` });
    const lm = await w.text('stories260K');
    const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog.';
    const plain = await lm.complete(prompt, { maxTokens: 16, temperature: 0 });
    const guard = await lm.complete(prompt, { maxTokens: 16, temperature: 0, dropout: { context: 'prompt', members: 0 } });
    const votes: { base: number; votes: number[]; dropped: number[][] }[] = [];
    let done: { tokens: number[]; stats: { dropout?: { members: number; steps: number; ensembleSteps: number; dropsPerMember: number[]; context: { positions: number[]; aleatoric: number[]; epistemic: number[] } } } } | null = null;
    for await (const ev of lm.generate(prompt, { maxTokens: 16, temperature: 0, dropout: { context: [[1, 20]], seed: 3 } })) {
      if (ev.type === 'token') {
        if (ev.dropout) votes.push(ev.dropout);
      } else done = ev;
    }
    const bad = await lm.complete(prompt, { maxTokens: 4, dropout: { context: [[0, 999]] } }).then(
      () => 'resolved',
      (e: { code?: string }) => e.code ?? 'unknown',
    );
    lm.dispose();
    // The uncertainty is reduced inside the graphs (TopK, Softmax, LogSoftmax, MatMuls on empty
    // tensors at every decode step): on WebGPU its numbers must be WASM's.
    let onWasm: { aleatoric: number[]; epistemic: number[] } | null = null;
    if (backend !== 'wasm') {
      const cpu = await (await whittle.Whittle.create({ backend: 'wasm', storeName: 'dropout-wasm-check' })).text('stories260K');
      const ref = await cpu.complete(prompt, { maxTokens: 16, temperature: 0, dropout: { context: [[1, 20]], seed: 3 } });
      onWasm = ref.stats.dropout!.context;
      cpu.dispose();
    }
    return { plain: plain.tokens, guard: guard.tokens, guardStats: guard.stats.dropout ?? null, done, votes, bad, onWasm };
  }, whittleBackend.backend);
  expect(r.guard).toEqual(r.plain);
  expect(r.guardStats).toBeNull();
  const d = r.done!.stats.dropout!;
  expect(r.done!.tokens).toHaveLength(16);
  expect(d).toMatchObject({ members: 3, steps: 16 });
  expect(d.context.positions).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
  expect(d.context.epistemic.every((x) => x >= 0)).toBe(true);
  expect(Math.max(...d.context.epistemic)).toBeGreaterThan(Math.min(...d.context.epistemic));
  if (r.onWasm) {
    const worst = (a: number[], b: number[]) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    expect(worst(d.context.aleatoric, r.onWasm.aleatoric), 'aleatoric vs WASM').toBeLessThan(1e-3);
    expect(worst(d.context.epistemic, r.onWasm.epistemic), 'epistemic vs WASM').toBeLessThan(1e-3);
  }
  expect(d.ensembleSteps).toBe(r.votes.length);
  expect(d.ensembleSteps).toBeGreaterThan(0);
  for (const v of r.votes) {
    expect(v.votes).toHaveLength(3);
    for (const p of v.dropped.flat()) expect(p >= 1 && p < 20).toBe(true);
  }
  expect(r.bad).toBe('INVALID_ARGUMENT');
});
