/**
 * The text benchmark's peer: transformers.js 4.x (its own onnxruntime-web build) generating
 * from the exported folder in bench/out/transformersjs/, timed inside this worker exactly as
 * Whittle times itself inside its worker. Benchmark-only code.
 */
import * as Comlink from 'comlink';
import { AutoModelForCausalLM, env } from '@huggingface/transformers';
import { timedGreedy } from './peer-generate.ts';

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
    const run = await timedGreedy(this.model!, prompt, newTokens);
    return { ...run, prefillMs: run.ttftMs };
  }

}

Comlink.expose(new Peer());
