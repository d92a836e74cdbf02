/**
 * The text benchmark's peer: transformers.js 4.x (its own onnxruntime-web build) generating
 * from the exported folder in bench/out/transformersjs/, timed inside this worker exactly as
 * Whittle times itself inside its worker. Benchmark-only code.
 */
import * as Comlink from 'comlink';
import { AutoModelForCausalLM, Tensor, env } from '@huggingface/transformers';

export interface PeerRun {
  tokens: number[];
  prefillMs: number;
  ttftMs: number;
  decodeMs: number;
}

type Model = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

class Peer {
  private model: Model | null = null;

  async load(id: string, device: 'wasm' | 'webgpu'): Promise<number> {
    const t0 = performance.now();
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = '/bench/out/transformersjs/';
    const onnx = env.backends.onnx as { wasm?: { wasmPaths?: string; numThreads?: number } };
    onnx.wasm!.wasmPaths = `${location.origin}/ort-peer/`;
    onnx.wasm!.numThreads = 1;
    this.model = await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32', device });
    return performance.now() - t0;
  }

  async generate(prompt: number[], newTokens: number): Promise<PeerRun> {
    const model = this.model!;
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
    return { tokens, prefillMs: first - t0, ttftMs: first - t0, decodeMs: end - first };
  }
}

Comlink.expose(new Peer());
