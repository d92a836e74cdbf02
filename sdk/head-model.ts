/**
 * A model's zero-block plan (embedding -> final norm -> LM head) running in its own worker.
 * The smallest real model path: store -> worker -> onnxruntime-web -> logits.
 */
import * as Comlink from 'comlink';
import type { HeadEngine, HeadModelInfo } from '../workers/head/engine.ts';
import type { RuntimeConfig } from '../workers/ort/runtime.ts';
import { startLoaded, type SpawnWorker, type WorkerClient } from './client/worker-client.ts';

/**
 * @internal Not exported from the entry: `Whittle.headModel()` starts one for the project's
 * own tests (worker death, backend parity), the smallest path through store, worker and runtime.
 */
export class HeadModel {
  private constructor(
    private readonly client: WorkerClient<HeadEngine>,
    /** What the worker reported after loading (graph size, backend, threads). */
    public info: HeadModelInfo,
    /** Whether the weights came from the cache or the network. */
    readonly source: 'cache' | 'network',
  ) {}

  /** @internal use Whittle.headModel() */
  static async start(spawn: SpawnWorker, runtime: RuntimeConfig, checkpoint: Blob, name: string, source: 'cache' | 'network'): Promise<HeadModel> {
    // `load` runs again on every fresh worker, so a worker death costs a reload, not the model.
    const { client, info } = await startLoaded<HeadEngine, HeadModelInfo>({
      spawn,
      label: `head:${name}`,
      load: async (remote) => {
        await remote.init(runtime);
        const bytes = await checkpoint.arrayBuffer();
        return remote.load(Comlink.transfer(bytes, [bytes]), name);
      },
    });
    return new HeadModel(client, info, source);
  }

  /** Logits [tokens.length * vocab], row-major. */
  async logits(tokens: ArrayLike<number>): Promise<Float32Array> {
    return this.client.call((remote) => {
      const ids = Int32Array.from(tokens); // per attempt: a retry on a fresh worker transfers its own copy
      return remote.logits(Comlink.transfer(ids, [ids.buffer]));
    });
  }

  /** The current worker (tests use it to kill the worker; devtools to find it). */
  worker(): Promise<Worker> {
    return this.client.worker();
  }

  /** How many workers have been started for this model (1 + restarts after deaths). */
  get workerStarts(): number {
    return this.client.spawnCount;
  }

  dispose(): void {
    this.client.dispose();
  }
}
