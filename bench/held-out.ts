/**
 * The held-out text and the measurements the pruning benchmarks share (prune-report,
 * width-report, sparsity-report): stories sampled from stories260K through TextEngine at
 * temperature 1 with fixed seeds (TinyStories-domain text for TinyStories-domain models), the
 * perplexity over them, and a greedy decode's speed in wall and CPU time.
 *
 * @example
 * const stories = await sampleHeldOutStories(ort);
 * const ppl = await heldOutPerplexity(engine, heldOutWindows(model, stories));
 */
import { readLocalModelFile } from '../models/local.ts';
import type { OrtModule } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromLlama2c, type TextModel } from '../workers/text/model.ts';

export const HELD_OUT_SEEDS = [101, 102, 103, 104, 105, 106];
export const HELD_OUT_MAX_TOKENS = 160;

/** stories260K with its tokenizer, from public/models (npm run models). */
export function stories260KModel(): TextModel {
  return textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin'));
}

/** One story per HELD_OUT_SEEDS, sampled from BOS by stories260K (at most HELD_OUT_MAX_TOKENS each). */
export async function sampleHeldOutStories(ort: OrtModule): Promise<string[]> {
  const sampler = await TextEngine.create(ort, 'wasm', stories260KModel());
  const stories: string[] = [];
  for (const seed of HELD_OUT_SEEDS) {
    for await (const ev of sampler.generate([sampler.config.bosTokenId], { maxTokens: HELD_OUT_MAX_TOKENS, temperature: 1, seed })) if (ev.type === 'done') stories.push(ev.text.trim());
  }
  await sampler.dispose();
  return stories;
}

/** Each story re-encoded by `model`'s tokenizer as its own window from BOS, cut to the context. */
export function heldOutWindows(model: TextModel, stories: readonly string[]): number[][] {
  const c = model.config;
  return stories.map((s) => [c.bosTokenId, ...model.tokenizer.encode(s)].slice(0, c.maxSeqLen));
}

/** Perplexity over every window's predictions together (token-weighted, not a mean of per-window perplexities). */
export async function heldOutPerplexity(engine: TextEngine, windows: number[][]): Promise<number> {
  let nll = 0;
  let n = 0;
  for (const w of windows) {
    const { perplexity, predictions } = await engine.perplexity(w);
    nll += Math.log(perplexity) * predictions;
    n += predictions;
  }
  return Math.exp(nll / n);
}

/**
 * Best of `reps` greedy 128-token decodes (after one warm-up) on the compiled plan: wall decode
 * tok/s (the engine's stats) and tokens per second of this process's CPU time for the whole
 * generation (1 WASM thread on the main thread: it leaves out time the OS gave other jobs, the
 * steadier number on a shared machine).
 */
export async function decodeSpeed(engine: TextEngine, bos: number, reps: number): Promise<{ wall: number; cpu: number }> {
  let wall = 0;
  let cpu = 0;
  for (let r = 0; r <= reps; r++) {
    const cpu0 = process.cpuUsage();
    for await (const ev of engine.generate([bos], { maxTokens: 128, greedy: true, stopTokens: [] })) {
      if (ev.type !== 'done' || r === 0) continue;
      const used = process.cpuUsage(cpu0);
      wall = Math.max(wall, ev.stats.decodeTokensPerSecond);
      cpu = Math.max(cpu, ev.tokens.length / ((used.user + used.system) / 1e6));
    }
  }
  return { wall, cpu };
}
