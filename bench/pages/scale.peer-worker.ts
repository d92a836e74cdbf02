/**
 * The scale benchmark's peer: transformers.js 4.x (its own onnxruntime-web build) on the
 * optimum-style export of the same synthetic weights (bench/out/transformersjs/<id>/), with a
 * given WASM thread count, timed inside this worker as Whittle times itself inside its worker.
 * One worker per load, so a second worker's load is transformers.js's own load from its Cache
 * Storage. Benchmark-only code.
 */
import * as Comlink from 'comlink';
import { AutoModelForCausalLM, env } from '@huggingface/transformers';
import { timedGreedy, type TimedGeneration } from './peer-generate.ts';

export interface ScalePeerLoad {
  ms: number;
  /** Bytes this load fetched over the network (resource timing of this worker; 0 when all came from Cache Storage). */
  networkBytes: number;
  /** Bytes in transformers.js's Cache Storage after the load (the body sizes of its cached responses). */
  cachedBytes: number;
}

/** One timed generation (peer-generate.ts). */
export type ScalePeerRun = TimedGeneration;

type Model = Awaited<ReturnType<typeof AutoModelForCausalLM.from_pretrained>>;

class ScalePeer {
  private model: Model | null = null;

  async load(id: string, threads: number, dtype: 'fp32' | 'q8' | 'q4' = 'fp32'): Promise<ScalePeerLoad> {
    const t0 = performance.now();
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = '/bench/out/transformersjs/';
    const onnx = env.backends.onnx as { wasm?: { wasmPaths?: string; numThreads?: number } };
    onnx.wasm!.wasmPaths = `${location.origin}/ort-peer/`;
    onnx.wasm!.numThreads = threads;
    this.model = await AutoModelForCausalLM.from_pretrained(id, { dtype, device: 'wasm' });
    const ms = performance.now() - t0;
    // Only model files count: the runtime's own .wasm/.mjs are not the model's download.
    const networkBytes = (performance.getEntriesByType('resource') as PerformanceResourceTiming[])
      .filter((e) => e.name.includes(`/bench/out/transformersjs/${id}/`))
      .reduce((n, e) => n + e.encodedBodySize, 0);
    return { ms, networkBytes, cachedBytes: await this.cachedBytes(id) };
  }

  private async cachedBytes(id: string): Promise<number> {
    const cache = await caches.open(env.cacheKey);
    let bytes = 0;
    for (const request of await cache.keys()) {
      if (!request.url.includes(`/bench/out/transformersjs/${id}/`)) continue;
      const response = await cache.match(request);
      if (response) bytes += (await response.blob()).size;
    }
    return bytes;
  }

  generate(prompt: number[], newTokens: number): Promise<ScalePeerRun> {
    return timedGreedy(this.model!, prompt, newTokens);
  }

}

Comlink.expose(new ScalePeer());
