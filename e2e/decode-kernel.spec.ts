/**
 * Decode steps on Whittle's own int8 WebAssembly SIMD kernels (workers/text/kernel-decoder.ts)
 * in a real Chromium worker: a q8 load takes them by default on WASM, they run the same bytes
 * as in Node (the worker's greedy tokens and last-step logits equal the Node engine's exactly),
 * stay within the int8 graphs' answer, mix with speculation's drafts and verification, and
 * `decodeKernel: 'onnxruntime'` turns them off. The kernel-level checks (each kernel against
 * float64, steps against the weight-only fp32 graphs) are in Vitest.
 */
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromLlama2c } from '../workers/text/model.ts';
import { readLocalModelFile } from '../models/local.ts';
import { test, expect } from './fixtures.ts';

const PROMPT = [1, 403, 407, 261, 378];
const SETTING = { linear: 'q8', head: 'q8' } as const;
const N = 24;

/** The Node engine on the same weights and setting (decode steps on the kernels, 'auto'). */
async function nodeRun(): Promise<{ tokens: number[]; path: string }> {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const engine = await TextEngine.create(
    ort,
    'wasm',
    textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin')),
    { compress: SETTING },
  );
  let tokens: number[] = [];
  for await (const ev of engine.generate(PROMPT, { maxTokens: N, greedy: true, stopTokens: [] }))
    if (ev.type === 'done') tokens = ev.tokens;
  const path = engine.decode.path;
  await engine.dispose();
  return { tokens, path };
}

test("q8 decode steps run on the kernels in the worker, give the Node engine's tokens, mix with speculation, and can be turned off", async ({
  harness,
  whittleBackend,
}) => {
  test.skip(whittleBackend.backend !== 'wasm', "the decode kernels are the WASM backend's (WebGPU keeps its graphs)");
  test.setTimeout(120_000);
  const r = await harness.evaluate(
    async ({ prompt, setting, n }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'decode-kernel' });
      const greedy = { maxTokens: n, temperature: 0, stopTokens: [] as number[], addBos: false };
      const kernel = await w.text('stories260K', { compress: setting });
      const tokens = (await kernel.complete(prompt, greedy)).tokens;
      const info = kernel.info;
      // Speculation: drafts through the exit and verification on the graphs, plain steps on the kernels.
      await kernel.setPlan({ layers: [0, 1, 2, 3, 4], exit: 2 });
      const spec = await kernel.complete(prompt, { ...greedy, speculate: { draft: 2 } });
      const afterSpec = kernel.info.decode.path;
      kernel.dispose();
      const graphs = await w.text('stories260K', { compress: setting, decodeKernel: 'onnxruntime' });
      const graphTokens = (await graphs.complete(prompt, greedy)).tokens;
      const graphInfo = graphs.info;
      graphs.dispose();
      return {
        tokens,
        decode: info.decode,
        weights: info.weights,
        spec: spec.tokens,
        afterSpec,
        graphTokens,
        graphDecode: graphInfo.decode,
      };
    },
    { prompt: PROMPT, setting: SETTING, n: N },
  );
  expect(r.weights).toMatchObject(SETTING);
  expect(r.decode.path).toBe('kernel');
  expect(r.decode.kernelBytes).toBeGreaterThan(0);
  expect(r.graphDecode).toEqual({ path: 'onnxruntime', kernelBytes: 0, threads: 0 });
  // The e2e page is cross-origin isolated with two onnxruntime threads: the kernels get their helper.
  expect(r.decode.threads).toBe(2);
  expect(r.afterSpec).toBe('kernel');
  const node = await nodeRun();
  expect(node.path).toBe('kernel');
  // The same kernels and the same onnxruntime build in Node and Chromium: the same tokens.
  expect(r.tokens).toEqual(node.tokens);
  // The int8 graphs quantize activations to 8 bits, the kernels to 11: greedy paths agree on
  // this prompt for at least the first tokens (after that a near tie may go either way).
  expect(r.graphTokens.slice(0, 8)).toEqual(r.tokens.slice(0, 8));
  expect(r.spec.slice(0, 8)).toEqual(r.tokens.slice(0, 8));
  expect(r.spec).toHaveLength(N);
});

test("an fp32 load of a BF16 folder decodes on the kernels (its weights kept as bf16) and gives onnxruntime's greedy tokens", async ({
  harness,
  whittleBackend,
}) => {
  test.skip(whittleBackend.backend !== 'wasm', "the decode kernels are the WASM backend's (WebGPU keeps its graphs)");
  test.setTimeout(120_000);
  // stories-layerskip rewritten as BF16 in 3 shards by the fixture server (e2e/fixture-server.ts).
  const url = '../../__e2e/hf/bf16x3/stories-layerskip/';
  const r = await harness.evaluate(
    async ({ url, n }) => {
      const { whittle } = window.harness;
      const w = await whittle.Whittle.create({ backend: 'wasm', storeName: 'decode-kernel-bf16' });
      const greedy = { maxTokens: n, temperature: 0, stopTokens: [] as number[] };
      const run = async (decodeKernel: 'auto' | 'onnxruntime') => {
        const lm = await w.text({ url, integrity: 'none' }, { decodeKernel });
        const tokens = (await lm.complete('Once upon a time', greedy)).tokens;
        const info = lm.info;
        lm.dispose();
        return { tokens, decode: info.decode, weights: info.weights };
      };
      return { kernel: await run('auto'), graphs: await run('onnxruntime') };
    },
    { url, n: 16 },
  );
  expect(r.kernel.decode.path).toBe('kernel');
  // stories-layerskip: 8 blocks of 160 x (320 + 160 + 864) + 432 x 160 weights, 2.27M: 9.1 MB
  // as fp32, 5.4 MB with everything but q|k|v in bf16 (its q columns carry 1/sqrt(20), not a
  // bf16 value's scale); the kernels' memory adds the bf16 head, caches and scratch, in 64 KiB pages.
  expect(r.kernel.decode.kernelBytes).toBeGreaterThan(5_000_000);
  expect(r.kernel.decode.kernelBytes).toBeLessThan(8_000_000);
  expect(r.graphs.decode.path).toBe('onnxruntime');
  expect(r.kernel.tokens).toHaveLength(16);
  // The same products in another summation order (fp32 rounding only): the same greedy tokens.
  expect(r.kernel.tokens).toEqual(r.graphs.tokens);
});
