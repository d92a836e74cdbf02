/**
 * The benchmark peers' one timed generation: transformers.js greedy decoding of exactly
 * `newTokens` tokens (EOS suppressed by min_new_tokens, as Whittle's `stopTokens: []`), with a
 * timestamp per generated token taken by a streamer inside the worker, as Whittle times itself.
 * Shared by the text and scale benchmarks' peer workers. Benchmark-only code.
 */
import { Tensor, type AutoModelForCausalLM } from '@huggingface/transformers';

type Model = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

export interface TimedGeneration {
  tokens: number[];
  /** From the generate() call to the first generated token: the prompt pass plus the first sampling. */
  ttftMs: number;
  /** From the first generated token to the last. */
  decodeMs: number;
}

export async function timedGreedy(model: Model, prompt: number[], newTokens: number): Promise<TimedGeneration> {
  const inputIds = new Tensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
  const attentionMask = new Tensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
  const stamps: number[] = [];
  const tokens: number[] = [];
  let calls = 0;
  const streamer = {
    put(value: bigint[][]) {
      // The first call is the prompt; each later one is one generated token.
      if (calls++ === 0) return;
      stamps.push(performance.now());
      tokens.push(Number(value[0]![0]));
    },
    end() {},
  };
  const t0 = performance.now();
  await model.generate({ input_ids: inputIds, attention_mask: attentionMask, max_new_tokens: newTokens, min_new_tokens: newTokens, do_sample: false, streamer } as never);
  const end = performance.now();
  const first = stamps[0] ?? end;
  return { tokens, ttftMs: first - t0, decodeMs: end - first };
}
