/** Text generation in a worker, on WASM and WebGPU in Chromium: golden tokens, streaming, plans, abort. */
import { expectGoldenTokens, recordStats, statsFromGenerate } from 'whittle/playwright';
import { test, expect, STORIES260K_GOLDEN as GOLDEN } from './fixtures.ts';

test('stories260K greedy from BOS gives run.c\'s 20 tokens, streamed token by token', async ({ harness, whittleBackend }) => {
  const r = await harness.evaluate(async (backend) => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend, storeName: `text-${backend}` });
    const lm = await w.text('stories260K');
    const streamed: number[] = [];
    let text = '';
    let done: { tokens: number[]; text: string; stats: { generatedTokens: number; stopReason: string; decodeTokensPerSecond: number; timeToFirstTokenMs: number } } | null = null;
    for await (const ev of lm.generate([1], { maxTokens: 20, temperature: 0 })) {
      if (ev.type === 'token') {
        streamed.push(ev.token);
        text += ev.text;
      } else done = ev;
    }
    lm.dispose();
    return { streamed, text, done, info: lm.info };
  }, whittleBackend.backend);
  expectGoldenTokens(r.streamed, GOLDEN);
  expectGoldenTokens(r.done!.tokens, GOLDEN);
  expect(r.text).toBe(r.done!.text);
  expect(r.text).toContain('Once upon a time, there was a little girl named Lily');
  expect(r.info.runtime.backend).toBe(whittleBackend.backend);
  expect(r.done!.stats).toMatchObject({ generatedTokens: 20, stopReason: 'max-tokens' });
  expect(r.done!.stats.decodeTokensPerSecond).toBeGreaterThan(0);
  await recordStats(statsFromGenerate(r.done!.stats));
});

test('streamed text is exact: the first token keeps its leading space; lm.decode inverts lm.encode', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'text assembly is backend-independent; WebGPU golden above');
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-exact' });
    const lm = await w.text('stories260K');
    let streamed = '';
    let done: { text: string; tail: string } | null = null;
    for await (const ev of lm.generate('Once upon a time, there was a little', { maxTokens: 8, temperature: 0 })) {
      if (ev.type === 'token') streamed += ev.text;
      else done = ev;
    }
    // decode is encode's inverse in the worker; an id past the vocabulary is refused, typed.
    const roundTrip = await lm.decode(await lm.encode('Once upon a time, there was a little girl.'));
    const outside = await lm.decode([512]).then(
      () => 'no error',
      (e: { code?: string }) => e.code,
    );
    lm.dispose();
    return { streamed, done, roundTrip, outside };
  });
  expect(r.streamed).toMatch(/^ girl named Lily/);
  expect(r.streamed + r.done!.tail).toBe(r.done!.text);
  expect(r.roundTrip).toBe('Once upon a time, there was a little girl.');
  expect(r.outside).toBe('INVALID_ARGUMENT');
});

test('an aborted perplexity call rejects with ABORTED within a step; the model keeps working', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'cancellation crosses the worker boundary the same way on every backend');
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-abort-ppl' });
    const lm = await w.text('stories260K');
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends. '.repeat(4);
    let t = performance.now();
    const full = await lm.perplexity(text);
    const fullMs = performance.now() - t;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), fullMs / 10);
    t = performance.now();
    const code = await lm.perplexity(text, { signal: controller.signal }).then(
      () => 'finished',
      (e: { code?: string }) => e.code ?? 'unknown',
    );
    const abortedMs = performance.now() - t;
    const again = await lm.perplexity(text);
    const tokens = (await lm.complete([1], { maxTokens: 5, temperature: 0 })).tokens;
    lm.dispose();
    return { code, fullMs, abortedMs, full: full.perplexity, again: again.perplexity, tokens, predictions: full.predictions };
  });
  expect(r.predictions).toBeGreaterThan(100);
  expect(r.code).toBe('ABORTED');
  expect(r.abortedMs).toBeLessThan(r.fullMs);
  expect(r.again).toBe(r.full);
  expectGoldenTokens(r.tokens, GOLDEN.slice(0, 5));
});

test('plans recompile from weights in the worker (no download), abort stops a stream, long prompts are refused', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'plan mechanics are backend-independent; WebGPU golden above');
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-plans' });
    const lm = await w.text('stories260K');
    const full = await lm.complete([1], { maxTokens: 12, temperature: 0 });
    const before = performance.getEntriesByType('resource').length;
    const pruned = await lm.setPlan({ layers: [0, 1, 3, 4] });
    const prunedOut = await lm.complete([1], { maxTokens: 12, temperature: 0 });
    const exitInfo = await lm.setPlan({ layers: [0, 1, 2, 3, 4], exit: 2 });
    const early = await lm.complete([1], { maxTokens: 12, temperature: 0, exit: true });
    const after = performance.getEntriesByType('resource').slice(before).filter((e) => e.name.includes('/models/') || e.name.includes('/__e2e/')).length;
    await lm.setPlan({ layers: [0, 1, 2, 3, 4] });
    // Abort after the third token: the stream ends with ABORTED, the model stays usable.
    const controller = new AbortController();
    let seen = 0;
    let abortCode: string | null = null;
    try {
      for await (const ev of lm.generate([1], { maxTokens: 200, temperature: 0, signal: controller.signal })) {
        if (ev.type === 'token' && ++seen === 3) controller.abort();
      }
    } catch (e) {
      abortCode = (e as { code?: string }).code ?? 'unknown';
    }
    const again = await lm.complete([1], { maxTokens: 5, temperature: 0 });
    const long = await lm.complete(Array.from({ length: 600 }, () => 300), { maxTokens: 1 }).then(
      () => null,
      (e: { code?: string; message?: string }) => ({ code: e.code, message: e.message }),
    );
    lm.dispose();
    return { full: full.tokens, pruned: prunedOut.tokens, prunedPlan: pruned.plan, exitPlan: exitInfo.plan, early: early.tokens, newRequests: after, before, seen, abortCode, again: again.tokens, long };
  });
  expect(r.prunedPlan).toEqual({ layers: [0, 1, 3, 4] });
  expect(r.exitPlan).toMatchObject({ exit: 2 });
  expect(r.pruned).toHaveLength(12);
  expect(r.pruned).not.toEqual(r.full); // dropping a block changes this tiny model's output
  expect(r.early).toHaveLength(12);
  expect(r.newRequests).toBe(0);
  expect(r.abortCode).toBe('ABORTED');
  expect(r.seen).toBeLessThanOrEqual(4); // stops within one step
  expectGoldenTokens(r.again, GOLDEN.slice(0, 5));
  expect(r.long).toMatchObject({ code: 'INVALID_ARGUMENT' });
  expect(r.long!.message).toContain('context');
});

test('a plan saved with the cached model is restored on the next load', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'storage behaviour is backend-independent');
  const r = await harness.evaluate(async () => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-saved-plan' });
    const first = await w.text('stories260K');
    const pruned = await first.setPlan({ layers: [0, 1, 3, 4] });
    await first.savePlan(pruned.plan); // on the handle; Whittle.savePlan clears it below
    first.dispose();
    const again = await w.text('stories260K');
    const restored = again.info.plan;
    const source = again.source;
    again.dispose();
    await w.savePlan('stories260K', null);
    const plain = await w.text('stories260K');
    const cleared = plain.info.plan;
    plain.dispose();
    return { restored, source, cleared };
  });
  expect(r.restored).toEqual({ layers: [0, 1, 3, 4] });
  expect(r.source).toBe('cache');
  expect(r.cleared).toEqual({ layers: [0, 1, 2, 3, 4] });
});

test('the LayerSkip-trained HF model generates in the browser exactly as the reference computes', async ({ harness, whittleBackend }) => {
  test.skip(whittleBackend.backend !== 'wasm', 'one backend is enough for an importer check; golden tokens cover WebGPU');
  const { readLocalModelFile } = await import('../models/local.ts');
  const { readHfModel } = await import('../models/import/hf/model.ts');
  const { LlamaReference, referenceGreedy } = await import('../models/reference/llama-ref.ts');
  const read = (name: string) => readLocalModelFile('stories-layerskip', name);
  const { config, weights } = readHfModel({ 'config.json': read('config.json'), 'model.safetensors': read('model.safetensors') });
  const prompt = [1, 403, 407, 261, 378];
  const expected = referenceGreedy(new LlamaReference(config, weights), prompt, 16);
  const got = await harness.evaluate(async (prompt) => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-hf' });
    const lm = await w.text('stories-layerskip');
    const done = await lm.complete(prompt, { maxTokens: 16, temperature: 0, stopTokens: [], addBos: false });
    lm.dispose();
    return { tokens: done.tokens, nLayers: lm.info.nLayers };
  }, prompt);
  expect(got.nLayers).toBe(8);
  expect(got.tokens).toEqual(expected);
});

test('depth pruning on the device: score blocks from calibration text, drop one, keep generating', async ({ harness, whittleBackend }) => {
  // Scoring runs the compiled block graphs on the model's backend, so WebGPU runs it too.
  const r = await harness.evaluate(async (backend) => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend, storeName: `text-prune-${backend}` });
    const lm = await w.text('stories260K');
    const result = await lm.prune({ remove: 1, criterion: 'influence' });
    const done = await lm.complete([1], { maxTokens: 12, temperature: 0 });
    lm.dispose();
    return { plan: result.plan, removed: result.removed, infoPlan: lm.info.plan, tokens: done.tokens.length, influence: result.scores.influence, backend: lm.info.runtime.backend };
  }, whittleBackend.backend);
  expect(r.backend).toBe(whittleBackend.backend);
  expect(r.plan.layers).toHaveLength(4);
  expect(r.removed).toHaveLength(1);
  expect(r.removed[0]).not.toBe(0); // first and last blocks are kept by default
  expect(r.removed[0]).not.toBe(4);
  expect(r.infoPlan).toEqual(r.plan);
  expect(r.influence).toHaveLength(5);
  expect(r.tokens).toBe(12);
});

test('self-speculative greedy decoding is token-identical to full depth (LayerSkip and baseline models)', async ({ harness, whittleBackend }) => {
  test.setTimeout(whittleBackend.backend === 'webgpu' ? 240_000 : 120_000);
  // SwiftShader emulates the GPU on the CPU: one prompt, a few tokens per model there (the
  // baseline's shallow exit makes sure rejections, hence GPU cache truncation, happen).
  const gpu = whittleBackend.backend === 'webgpu';
  const cases = gpu
    ? ['stories-layerskip', 'stories-baseline'].map((model) => ({ model, prompts: ['Once upon a time'], maxTokens: 8, configs: [{ exit: 2, draft: 3 }] }))
    : ['stories-layerskip', 'stories-baseline'].map((model) => ({
        model,
        prompts: ['Once upon a time', 'Tom had a red ball.', 'One day, a little bird', 'The sun was hot and', 'Lucy wanted to bake a cake'],
        maxTokens: 40,
        configs: [{ exit: 2, draft: 3 }, { exit: 5, draft: 'auto' as const }, {}],
      }));
  const r = await harness.evaluate(
    async ({ backend, cases }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend, storeName: `text-spec-${backend}` });
      const out = [];
      for (const c of cases) {
        const lm = await w.text(c.model);
        for (const prompt of c.prompts) {
          const full = await lm.complete(prompt, { maxTokens: c.maxTokens, greedy: true, stopTokens: [] });
          for (const speculate of c.configs) {
            const events: { origin?: string; rejected?: unknown }[] = [];
            let done = null as null | { tokens: number[]; stats: { speculation?: { exit: number; drafted: number; accepted: number; tokensPerRound: number } } };
            for await (const ev of lm.generate(prompt, { maxTokens: c.maxTokens, greedy: true, stopTokens: [], speculate })) {
              if (ev.type === 'token') events.push({ origin: ev.origin, rejected: ev.rejected });
              else done = ev;
            }
            out.push({ model: c.model, prompt, speculate, full: full.tokens, spec: done!.tokens, stats: done!.stats.speculation!, origins: events.map((e) => e.origin), rejections: events.filter((e) => e.rejected).length });
          }
        }
        lm.dispose();
      }
      return out;
    },
    { backend: whittleBackend.backend, cases },
  );
  let drafted = 0;
  let accepted = 0;
  for (const row of r) {
    expect(row.spec, `${row.model} "${row.prompt}" ${JSON.stringify(row.speculate)}`).toEqual(row.full);
    expect(row.origins.every((o) => o === 'draft' || o === 'verifier')).toBe(true);
    expect(row.stats.tokensPerRound).toBeGreaterThanOrEqual(1);
    drafted += row.stats.drafted;
    accepted += row.stats.accepted;
  }
  expect(accepted).toBeGreaterThan(0);
  expect(accepted).toBeLessThan(drafted);
});

test('on-device compression: q8 (WASM int8 kernel) or q4 (WebGPU MatMulNBits) loads, generates close to fp32, and perplexity stays near', async ({ harness, whittleBackend }) => {
  test.setTimeout(whittleBackend.backend === 'webgpu' ? 240_000 : 120_000);
  const r = await harness.evaluate(async (backend) => {
    const { whittle } = window.harness;
    const w = await whittle.Whittle.create({ backend, storeName: `text-compress-${backend}` });
    const prompt = [1, 403, 407, 261, 378];
    const text = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her friends.';
    const fp32 = await w.text('stories-layerskip');
    const base = await fp32.complete(prompt, { maxTokens: 12, temperature: 0, stopTokens: [], addBos: false });
    const basePpl = (await fp32.perplexity(text)).perplexity;
    // WASM: q8 runs DynamicQuantizeMatMul; WebGPU: q4 runs MatMulNBits (accuracy_level 1).
    const setting = backend === 'wasm' ? ({ linear: 'q8' } as const) : ({ linear: 'q4', group: 32 } as const);
    await fp32.compress(setting);
    const done = await fp32.complete(prompt, { maxTokens: 12, temperature: 0, stopTokens: [], addBos: false });
    const ppl = (await fp32.perplexity(text)).perplexity;
    const info = fp32.info;
    fp32.dispose();
    return { base: base.tokens, tokens: done.tokens, basePpl, ppl, weights: info.weights, backend: info.runtime.backend };
  }, whittleBackend.backend);
  expect(r.backend).toBe(whittleBackend.backend);
  expect(r.weights).toMatchObject({ linear: whittleBackend.backend === 'wasm' ? 'q8' : 'q4' });
  expect(r.tokens).toHaveLength(12);
  expect(r.tokens.slice(0, 4)).toEqual(r.base.slice(0, 4));
  expect(Math.abs(r.ppl / r.basePpl - 1)).toBeLessThan(whittleBackend.backend === 'wasm' ? 0.01 : 0.1);
});

test('WebGPU runs pruned plans, early exit, speculation with rejections and aborts with the WASM answer, and leaks no GPU buffer on abort', async ({
  page,
  whittleBackend,
}) => {
  // The WASM tests above cover the plan mechanics; this one checks that WebGPU, where the KV
  // caches and the hidden state between segments stay in GPU buffers, gives the same answer on
  // the paths that touch them: a pruned plan, an early exit (two segments, drafts' head),
  // speculation whose rejected drafts truncate the GPU caches, and aborts mid-stream. stories260K
  // (5 blocks), short outputs: SwiftShader emulates the GPU on the CPU.
  test.skip(whittleBackend.backend !== 'webgpu', 'compares WebGPU with WASM in one page; the WASM project runs the plan tests above');
  test.setTimeout(300_000);
  await page.goto('/e2e/pages/device-faults.html'); // its workers count their GPU buffers (device-tap.worker.ts)
  await expect(page.locator('#status')).toHaveText('ready');
  const r = await page.evaluate(async () => {
    const { whittle, tapWorker, gpuBuffers } = window.faults;
    const cpu = await (await whittle.Whittle.create({ backend: 'wasm', storeName: 'text-gpu-plans' })).text('stories260K');
    const gpu = await (await whittle.Whittle.create({ backend: 'webgpu', storeName: 'text-gpu-plans' })).text('stories260K', { spawn: tapWorker });
    const prompt = [1, 403, 407, 261];
    const greedy = { maxTokens: 10, temperature: 0, stopTokens: [] as number[] };
    const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
    const maxAbs = (a: Float32Array) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    const plans = [{ layers: [0, 1, 2, 3, 4] }, { layers: [0, 1, 3, 4] }, { layers: [0, 1, 2, 3, 4], exit: 2 }, { layers: [0, 2, 3, 4], exit: 1 }];
    const rows = [];
    for (const plan of plans) {
      await cpu.setPlan(plan);
      await gpu.setPlan(plan);
      const exit = plan.exit !== undefined;
      const row = {
        plan,
        gpuPlan: gpu.info.plan,
        tokens: { cpu: (await cpu.complete(prompt, greedy)).tokens, gpu: (await gpu.complete(prompt, greedy)).tokens },
        exitTokens: exit ? { cpu: (await cpu.complete(prompt, { ...greedy, exit: true })).tokens, gpu: (await gpu.complete(prompt, { ...greedy, exit: true })).tokens } : null,
        logitDiff: 0,
        logitScale: 0,
      };
      for (const viaExit of exit ? [false, true] : [false]) {
        const [a, b] = [await cpu.logits(prompt, { exit: viaExit }), await gpu.logits(prompt, { exit: viaExit })];
        row.logitDiff = Math.max(row.logitDiff, maxDiff(a, b));
        row.logitScale = Math.max(row.logitScale, maxAbs(a));
      }
      rows.push(row);
    }

    // Speculation on the full plan through block 3's exit: some drafts are accepted and some
    // rejected, so the GPU caches are truncated mid-round; greedy output must still be WASM's
    // full-depth answer.
    await cpu.setPlan(plans[0]!);
    await gpu.setPlan(plans[0]!);
    const reference = (await cpu.complete(prompt, { ...greedy, maxTokens: 16 })).tokens;
    const spec = await gpu.complete(prompt, { ...greedy, maxTokens: 16, speculate: { exit: 3, draft: 3 } });

    // Aborts mid-stream on a two-segment plan (an early exit splits the graph; a pruned plan is
    // one graph): the stream ends with ABORTED, the model stays right, and no GPU buffer is left
    // behind (an abort between the segments leaked the hidden state, workers/text/runner.test.ts).
    await gpu.setPlan(plans[2]!);
    const cycle = async () => {
      const codes: string[] = [];
      for (let k = 0; k < 4; k++) {
        const controller = new AbortController();
        try {
          let seen = 0;
          for await (const ev of gpu.generate(prompt, { maxTokens: 200, temperature: 0, stopTokens: [], signal: controller.signal })) {
            if (ev.type === 'token' && ++seen === 2 + k) controller.abort();
          }
          codes.push('finished');
        } catch (e) {
          codes.push((e as { code?: string }).code ?? 'unknown');
        }
      }
      return { codes, after: (await gpu.complete(prompt, greedy)).tokens };
    };
    const worker = await gpu.worker();
    const live = async () => {
      const b = await gpuBuffers(worker);
      return b.created - b.destroyed;
    };
    const warm = [await cycle(), await cycle()];
    const liveBefore = await live();
    const measured = [await cycle(), await cycle(), await cycle()];
    const liveAfter = await live();
    await cpu.setPlan(plans[2]!);
    const exitPlanReference = (await cpu.complete(prompt, greedy)).tokens;
    const result = {
      rows,
      reference,
      spec: { tokens: spec.tokens, stats: spec.stats.speculation },
      aborts: [...warm, ...measured],
      exitPlanReference,
      liveBefore,
      liveAfter,
      backend: gpu.info.runtime.backend,
    };
    cpu.dispose();
    gpu.dispose();
    return result;
  });
  console.log(JSON.stringify({ logitDiffs: r.rows.map((x) => [x.plan, x.logitDiff, x.logitScale]), spec: r.spec.stats, live: [r.liveBefore, r.liveAfter] }));
  expect(r.backend).toBe('webgpu');
  for (const row of r.rows) {
    const what = JSON.stringify(row.plan);
    expect(row.gpuPlan, what).toEqual(row.plan);
    expect(row.tokens.gpu, what).toEqual(row.tokens.cpu);
    if (row.exitTokens) expect(row.exitTokens.gpu, what).toEqual(row.exitTokens.cpu);
    // float32 on both, different kernels (SwiftShader's shaders vs WASM's SIMD): max |difference|
    // within 1e-5 of the largest |logit| (about 2e-4 here; measured up to 1.9e-5 at scales 14-23).
    expect(row.logitDiff, what).toBeLessThan(1e-5 * row.logitScale);
  }
  expect(r.rows[1]!.tokens.cpu).not.toEqual(r.rows[0]!.tokens.cpu); // pruning changes this tiny model's output
  expect(r.spec.tokens).toEqual(r.reference);
  expect(r.spec.stats!.accepted).toBeGreaterThan(0);
  expect(r.spec.stats!.accepted).toBeLessThan(r.spec.stats!.drafted); // some drafts were rejected: truncation ran
  for (const run of r.aborts) {
    expect(run.codes).toEqual(['ABORTED', 'ABORTED', 'ABORTED', 'ABORTED']);
    expect(run.after).toEqual(r.exitPlanReference);
  }
  expect(r.liveAfter - r.liveBefore).toBe(0);
});

test('WebGPU plan switches leave no GPU buffer behind: the old plan goes before the next compiles', async ({ page, whittleBackend }) => {
  // onnxruntime-web keeps a released session's GPU buffers while another session lives on the
  // device, so compiling the next plan before releasing the old one left the old plan's weights
  // and run buffers behind at every switch (the WebGPU soak: +35 to +173 live buffers a switch,
  // linear). Three rounds of the three plans, a generation on each: the live buffers after the
  // third round are those after the first, and every round gives the same tokens.
  test.skip(whittleBackend.backend !== 'webgpu', 'WebGPU only: WASM has no GPU buffers');
  test.setTimeout(300_000);
  await page.goto('/e2e/pages/device-faults.html'); // its workers count their GPU buffers
  await expect(page.locator('#status')).toHaveText('ready');
  const r = await page.evaluate(async () => {
    const { whittle, tapWorker, gpuBuffers } = window.faults;
    const gpu = await (await whittle.Whittle.create({ backend: 'webgpu', storeName: 'text-gpu-switch' })).text('stories260K', { spawn: tapWorker });
    const plans = [{ layers: [0, 1, 2, 3, 4] }, { layers: [0, 1, 3, 4] }, { layers: [0, 1, 2, 3, 4], exit: 2 }];
    const prompt = [1, 403, 407, 261];
    const round = async () => {
      const tokens: number[][] = [];
      for (const plan of plans) {
        await gpu.setPlan(plan);
        tokens.push((await gpu.complete(prompt, { maxTokens: 4, temperature: 0, stopTokens: [] })).tokens);
      }
      return tokens;
    };
    const live = async () => {
      const b = await gpuBuffers(await gpu.worker());
      return b.created - b.destroyed;
    };
    const first = await round();
    const liveAfterFirst = await live();
    const later = [await round(), await round()];
    const liveAfterThird = await live();
    gpu.dispose();
    return { first, later, liveAfterFirst, liveAfterThird };
  });
  console.log(JSON.stringify({ live: [r.liveAfterFirst, r.liveAfterThird] }));
  for (const tokens of r.later) expect(tokens).toEqual(r.first);
  expect(r.first[1]).not.toEqual(r.first[0]); // the plans differ: each switch really compiled another graph
  // Equal up to onnxruntime's pooled uniform buffers, which come and go by one or two.
  expect(Math.abs(r.liveAfterThird - r.liveAfterFirst)).toBeLessThanOrEqual(2);
});
