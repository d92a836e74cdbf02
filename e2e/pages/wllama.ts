/**
 * The page e2e/wllama.spec.ts drives: wllama (llama.cpp in WASM, the peer) on a GGUF the project
 * exported, and Whittle through its public entry, side by side in one page. Only the spec's
 * comparisons are tests; this page just runs both and returns what they produced.
 */
import { Wllama, type RawCompletionParams, type RawCompletionResponse } from '@wllama/wllama';
import wasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url';
import * as whittle from 'whittle';

export interface WllamaRun {
  text: string;
  /** Generated token ids (null if wllama's response did not carry them: see `tokenIdsOf`). */
  tokens: number[] | null;
  finishReason: string | null;
  promptTokens: number | null;
}

/**
 * Token ids of a completion: with `n_probs` set, wllama's (llama-server's OAI-style) response lists
 * each generated token in `choices[0].logprobs.content`, with its `id`.
 */
function tokenIdsOf(response: RawCompletionResponse): number[] | null {
  const content = (response.choices[0]?.logprobs as { content?: { id?: unknown }[] } | null | undefined)?.content;
  if (!Array.isArray(content) || !content.every((p) => typeof p.id === 'number')) return null;
  return content.map((p) => p.id as number);
}

/**
 * Greedy completions of text prompts by wllama on the GGUF at `url`, one model load for all:
 * llama.cpp tokenizes each text itself (its completion API takes text; token-id prompts crashed
 * its worker in 3.13), adding BOS as the GGUF says, so '' is BOS alone. Greedy = temperature 0
 * and top-k 1, no repetition penalty, no prompt cache; EOS stops it as it stops Whittle.
 */
async function wllamaGreedy(
  url: string,
  prompts: string[],
  maxTokens: number,
  opts: { threads?: number; nCtx: number },
): Promise<WllamaRun[]> {
  const w = new Wllama({ default: wasmUrl }, { suppressNativeLog: true });
  try {
    const blob = await (await fetch(url)).blob();
    await w.loadModel([blob], { n_ctx: opts.nCtx, n_threads: opts.threads ?? 1, n_gpu_layers: 0, seed: 0 });
    const runs: WllamaRun[] = [];
    for (const prompt of prompts) {
      // n_probs makes each generated token's entry carry its id; cache_prompt is llama-server's own field (untyped by wllama).
      const params: RawCompletionParams & { cache_prompt: boolean } = {
        prompt,
        max_tokens: maxTokens,
        temperature: 0,
        top_k: 1,
        penalty_repeat: 1,
        n_probs: 1,
        cache_prompt: false,
      };
      const response = await w.createCompletion({ ...params, stream: false });
      const choice = response.choices[0];
      const finishReason = choice?.finish_reason ?? null;
      let tokens = tokenIdsOf(response);
      // A generation that stopped on EOS may list the EOS itself; Whittle never emits a stop token.
      if (tokens && finishReason === 'stop' && tokens.length > 0 && w.isTokenEOG(tokens[tokens.length - 1]!)) tokens = tokens.slice(0, -1);
      runs.push({ text: choice?.text ?? '', tokens, finishReason, promptTokens: response.usage?.prompt_tokens ?? null });
    }
    return runs;
  } finally {
    await w.exit();
  }
}

/**
 * Whittle's greedy completions of the same prompts ('' as `bos` alone, which is what wllama
 * makes of it), optionally with its own weight compression (a registry id: the project's models).
 */
async function whittleGreedy(
  model: string,
  prompts: string[],
  maxTokens: number,
  bos: number,
  compress?: whittle.WeightsSetting,
): Promise<WllamaRun[]> {
  const w = await whittle.Whittle.create({ backend: 'wasm', maxThreads: 1, storeName: `wllama-peer-${model}` });
  const lm = await w.text(model, compress ? { compress } : {});
  try {
    const runs: WllamaRun[] = [];
    for (const prompt of prompts) {
      const done = await lm.complete(prompt === '' ? [bos] : prompt, { maxTokens, temperature: 0 });
      runs.push({ text: done.text, tokens: done.tokens, finishReason: done.stats.stopReason, promptTokens: done.stats.promptTokens });
    }
    return runs;
  } finally {
    lm.dispose();
  }
}

const page = { wllamaGreedy, whittleGreedy };
declare global {
  interface Window {
    wllamaPage: typeof page;
  }
}
window.wllamaPage = page;
document.getElementById('status')!.textContent = 'ready';
