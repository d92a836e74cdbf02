/**
 * The scale benchmark's second peer: wllama 3.13 (llama.cpp compiled to WASM) on GGUF files of the
 * same synthetic weights (bench/export-gguf.ts -> bench/out/gguf/<id>/<id>-<F32|Q8_0|Q4_0>.gguf),
 * with a given thread count. Benchmark-only code, used by bench/pages/scale.ts as one contender.
 *
 * - Load: `loadModelFromUrl`, which downloads into wllama's own cache (OPFS) and loads from it; a
 *   second load, by a new Wllama instance (a new worker), finds the file in that cache.
 * - Prompt: wllama's completion API takes text (token-id prompts crashed its worker in 3.13), so the
 *   runner hands it 128 words that each are one token of the model's vocabulary (bench/scale.ts),
 *   and the page checks llama.cpp counted 128 prompt tokens. Different ids from the other
 *   contenders' prompt, the same amount of work: the weights are random and the cost of a token
 *   does not depend on which one it is.
 * - Timing: llama.cpp's own timings, taken inside wllama's worker as Whittle and transformers.js
 *   time themselves inside theirs: prefill = prompt tokens / prompt_ms (prompt pass up to the first
 *   sampled token), decode = (generated - 1) / predicted_ms (llama-server starts that clock at the
 *   first sampled token, so it spans the other generated - 1). The page-side
 *   times of the same call (which add wllama's per-token message round trips) are in `detail`.
 * - Greedy (top-k 1, temperature 0), EOS banned (ignore_eos) as the others cannot stop on it either,
 *   no prompt cache between the warm-up and the measured run (cache_prompt false).
 */
import { Wllama, type RawCompletionChunk, type RawCompletionParams } from '@wllama/wllama';
import wasmUrl from '@wllama/wllama/esm/wasm/wllama.wasm?url';

export interface WllamaGeneration {
  tokens: number[];
  generated: number;
  ttftMs: number;
  decodeMs: number;
  detail: Record<string, number | null>;
}

export interface WllamaContender {
  load(): Promise<{ networkBytes: number; cachedBytes: number; source: string }>;
  drop(): void;
  generate(prompt: number[], n: number): Promise<WllamaGeneration>;
  describe(): Record<string, unknown>;
}

/** llama.cpp's timing object on a completion response (llama-server's `timings`). */
type Timings = NonNullable<RawCompletionChunk['timings']>;

export function wllamaContender(opts: { url: string; threads: number; promptText: string; nCtx: number }): WllamaContender {
  let w: Wllama | null = null;
  const resourceBytes = () =>
    (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .filter((e) => e.name.includes(opts.url))
      .reduce((n, e) => n + e.encodedBodySize, 0);
  return {
    async load() {
      const before = resourceBytes();
      w = new Wllama({ default: wasmUrl }, { suppressNativeLog: true });
      await w.loadModelFromUrl(opts.url, { n_ctx: opts.nCtx, n_threads: opts.threads, n_gpu_layers: 0, seed: 0 });
      if (w.getNumThreads() !== opts.threads) throw new Error(`asked wllama for ${opts.threads} threads, it runs ${w.getNumThreads()}`);
      const networkBytes = resourceBytes() - before;
      const cachedBytes = (await w.cacheManager.list())
        .filter((e) => e.metadata?.originalURL?.includes(opts.url))
        .reduce((n, e) => n + e.size, 0);
      return { networkBytes, cachedBytes, source: networkBytes > 0 ? 'network' : 'cache' };
    },
    drop() {
      // exit() ends the worker; not awaited, as the other contenders' drop() does not wait either.
      void w?.exit();
      w = null;
    },
    async generate(prompt, n) {
      const t0 = performance.now();
      let first: number | null = null;
      let last = t0;
      let timings: Timings | null = null;
      let promptTokens: number | null = null;
      let generated: number | null = null;
      const onData = (chunk: RawCompletionChunk) => {
        const now = performance.now();
        if (chunk.choices[0]?.text) {
          first ??= now;
          last = now;
        }
        if (chunk.timings) timings = chunk.timings;
        if (chunk.usage) {
          promptTokens = chunk.usage.prompt_tokens;
          generated = chunk.usage.completion_tokens;
        }
      };
      // cache_prompt is llama-server's own field, which wllama passes through but does not type.
      const params: RawCompletionParams & { cache_prompt: boolean } = {
        prompt: opts.promptText,
        max_tokens: n,
        temperature: 0,
        top_k: 1,
        penalty_repeat: 1,
        ignore_eos: true,
        cache_prompt: false,
      };
      await w!.createCompletion({ ...params, stream: true, onData });
      const t = timings as Timings | null;
      if (!t) throw new Error('wllama returned no timings');
      if (t.prompt_n !== prompt.length || (promptTokens !== null && promptTokens !== prompt.length)) {
        throw new Error(
          `llama.cpp counted ${t.prompt_n} prompt tokens, the other contenders get ${prompt.length}: the prompt text does not tokenize as planned`,
        );
      }
      const count = generated ?? t.predicted_n;
      return {
        tokens: [],
        generated: count,
        ttftMs: t.prompt_ms,
        // llama-server starts predicted_ms when the first token is sampled: it spans the other count - 1.
        decodeMs: t.predicted_ms,
        detail: {
          llama_prompt_ms: t.prompt_ms,
          llama_predicted_ms: t.predicted_ms,
          llama_predicted_n: t.predicted_n,
          page_ttft_ms: first === null ? null : first - t0,
          page_decode_ms: first === null ? null : last - first,
        },
      };
    },
    describe() {
      return { weights_setting: 'GGUF (models/export/gguf.ts)', multithread_build: w?.isMultithread() ?? null };
    },
  };
}
