/**
 * Text benchmark: Whittle vs transformers.js on the same weights, each in its own worker, one
 * WASM thread each, greedy, the same prompt ids, generation length forced (no early EOS).
 * Cold = the first generation after load; warm = median of 3 after >= 1000 warm-up steps
 * (V8 tiers up the runtimes' JS over the first ~1000 steps). WebGPU (SwiftShader here) gets
 * a short run. The peer's tokens must equal Whittle's: it checks the export too.
 */
import * as Comlink from 'comlink';
import { Whittle } from 'whittle';
import type { PeerRun } from './peer.worker.ts';
import { log, report } from './page.ts';

const params = new URLSearchParams(location.search);
const quick = params.has('quick');
const models = (params.get('models') ?? 'stories260K,stories-layerskip').split(',');
const PROMPT = [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];

interface Figures {
  prefill_tok_s: number;
  decode_tok_s: number;
  ttft_ms: number;
}
const figures = (prefillMs: number, ttftMs: number, decodeMs: number, n: number): Figures => ({
  prefill_tok_s: Math.round((PROMPT.length / prefillMs) * 1000 * 10) / 10,
  decode_tok_s: Math.round(((n - 1) / decodeMs) * 1000 * 10) / 10,
  ttft_ms: Math.round(ttftMs * 100) / 100,
});
const median = (xs: Figures[]): Figures => {
  const pick = (k: keyof Figures) => [...xs.map((x) => x[k])].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return { prefill_tok_s: pick('prefill_tok_s'), decode_tok_s: pick('decode_tok_s'), ttft_ms: pick('ttft_ms') };
};

async function runBackend(model: string, backend: 'wasm' | 'webgpu') {
  let n = backend === 'webgpu' ? 24 : quick ? 64 : 256;
  const warmSteps = backend === 'webgpu' ? 0 : quick ? 256 : 1024;
  const measured = backend === 'webgpu' ? 1 : 5;

  const w = await Whittle.create({ backend, maxThreads: 1, storeName: `bench-text-${backend}` });
  let t0 = performance.now();
  const lm = await w.text(model);
  const whittleLoadMs = performance.now() - t0;
  // Stay inside the context (stories-layerskip: 256 positions): Whittle stops there, the peer would go on.
  n = Math.min(n, lm.info.maxSeqLen - PROMPT.length);
  const runWhittle = async () => {
    const done = await lm.complete(PROMPT, { maxTokens: n, temperature: 0, stopTokens: [], addBos: false });
    return { tokens: done.tokens, f: figures(done.stats.prefillMs, done.stats.timeToFirstTokenMs, done.stats.decodeMs, done.tokens.length) };
  };
  const worker = new Worker(new URL('./peer.worker.ts', import.meta.url), { type: 'module' });
  const peer = Comlink.wrap<{ load(id: string, d: string): Promise<number>; generate(p: number[], n: number): Promise<PeerRun> }>(worker);
  t0 = performance.now();
  const peerLoadMs = await peer.load(model, backend);
  const runPeer = async () => {
    const r = await peer.generate(PROMPT, n);
    return { tokens: r.tokens, f: figures(r.prefillMs, r.ttftMs, r.decodeMs, r.tokens.length) };
  };

  // Cold: the first generation after load, each in its own worker. Then warm-up and the
  // measured runs interleave the two, so machine noise hits both alike.
  const wCold = await runWhittle();
  const pCold = await runPeer();
  for (let steps = 0; steps < warmSteps; steps += n) {
    await runWhittle();
    await runPeer();
  }
  const wWarm: Figures[] = [];
  const pWarm: Figures[] = [];
  for (let i = 0; i < measured; i++) {
    wWarm.push((await runWhittle()).f);
    pWarm.push((await runPeer()).f);
  }
  lm.dispose();
  worker.terminate();
  const whittleWarm = median(wWarm);
  const peerWarm = median(pWarm);
  log(`${model} ${backend} whittle: cold ${JSON.stringify(wCold.f)} warm ${JSON.stringify(whittleWarm)}`);
  log(`${model} ${backend} transformers.js: cold ${JSON.stringify(pCold.f)} warm ${JSON.stringify(peerWarm)}`);
  return {
    model,
    backend,
    new_tokens: n,
    prompt_tokens: PROMPT.length,
    whittle: { ...whittleWarm, cold: wCold.f, load_ms: Math.round(whittleLoadMs) },
    transformersjs: { ...peerWarm, cold: pCold.f, load_ms: Math.round(peerLoadMs) },
    ratio_decode: Math.round((whittleWarm.decode_tok_s / peerWarm.decode_tok_s) * 100) / 100,
    ratio_decode_per_run: wWarm.map((x, i) => Math.round((x.decode_tok_s / pWarm[i]!.decode_tok_s) * 100) / 100),
    ratio_decode_cold: Math.round((wCold.f.decode_tok_s / pCold.f.decode_tok_s) * 100) / 100,
    ratio_ttft_cold: Math.round((pCold.f.ttft_ms / wCold.f.ttft_ms) * 100) / 100,
    tokens_match: JSON.stringify(wCold.tokens) === JSON.stringify(pCold.tokens),
  };
}

async function main() {
  const runs = [];
  for (const model of models) {
    runs.push(await runBackend(model, 'wasm'));
    if (!quick && (navigator as Navigator & { gpu?: GPU }).gpu) runs.push(await runBackend(model, 'webgpu'));
  }
  const first = runs[0]!;
  return { benchmark: 'text', model: first.model, backend: first.backend, whittle: first.whittle, transformersjs: first.transformersjs, ratio_decode: first.ratio_decode, runs };
}

report(main);
