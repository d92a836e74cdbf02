/**
 * Main-thread half of Whittle's RPC: owns one worker at a time, wraps it with comlink, and
 * survives its death.
 *
 * A worker can die without any event (terminate(), an out-of-memory kill, a crash). Each
 * worker holds a Web Lock named after itself (workers/rpc.ts); this client queues a request
 * for the same lock, which the browser grants only once the worker is gone. Then every pending
 * call rejects with `WORKER_DIED`, and the next call spawns a fresh worker and replays
 * `onSpawn` (e.g. re-sending the model) before running. A worker that reports its WebGPU
 * device lost (DEVICE_LOST_MESSAGE) is ended the same way, its pending calls rejecting with
 * `DEVICE_LOST`, except those sent after the worker had recorded the loss: the worker refuses
 * them unrun, so `call()` sends them once more, to a fresh worker (see startedAfterLoss).
 */
import * as Comlink from 'comlink';
import { WhittleError } from '../../core/errors.ts';
import { installErrorTransfer } from '../../core/rpc-errors.ts';

/**
 * The usual reason a worker script does not load: Vite's dev server pre-bundled the package into
 * node_modules/.vite/deps/, where the worker's relative URL points at nothing.
 */
const STARTUP_HINT = " (with Vite's dev server, add the `whittle/vite` plugin, or `optimizeDeps: { exclude: ['whittle'] }`, so the worker files keep their place next to the package)";

const READY_MESSAGE = 'whittle:ready'; // same literal as workers/rpc.ts (no runtime import from workers/)
/** A worker whose WebGPU device was lost says so (same literal as workers/ort/device-loss.ts). */
export const DEVICE_LOST_MESSAGE = 'whittle:device-lost';

/**
 * Starts a model's worker; override it (`ModelLoadOptions.spawn`) for bundlers that cannot see
 * `new Worker(new URL(...))`, or to host the worker file yourself.
 *
 * @example
 * const spawn: SpawnWorker = (name) => new Worker('/assets/whittle/text.worker.js', { type: 'module', name });
 * const lm = await w.text('stories260K', { spawn });
 */
export type SpawnWorker = (name: string) => Worker;

interface Generation<Api> {
  id: number;
  worker: Worker;
  remote: Comlink.Remote<Api>;
  /** Calls posted to this worker so far (Comlink APPLY messages, the same count the worker keeps as they arrive). */
  posted: number;
  /** How many of those had arrived when the worker recorded its device loss (null: no loss reported). */
  callsBeforeLoss: number | null;
  /** Rejects with WORKER_DIED when the worker is gone (or INVALID_ARGUMENT when the client retired it). */
  dead: Promise<never>;
  alive: boolean;
  /** Rejects `dead` and every pending call (once; later reasons are ignored). */
  markDead: (err: WhittleError) => void;
  /**
   * The calls in flight, each by its reject. Not Promise.race(call, dead): every race leaves a
   * reaction on `dead`, which stays pending for the worker's life, and that reaction keeps the
   * call's result alive (a live codec stream leaked ~110 KB/s of decoded audio that way, found by
   * scripts/soak).
   */
  pending: Set<(err: WhittleError) => void>;
}

/**
 * One worker generation's calls (WorkerClient.pin): they never start a fresh worker. Once that
 * worker is gone they reject with WORKER_DIED, for calls that only mean something to the worker
 * that began the work, such as the next chunk or the cancel of a stream it holds: a respawned
 * worker never had that stream, and starting one to say so would reload the whole model.
 */
export interface PinnedWorker<Api> {
  /** Which start of this client's worker (WorkerClient.spawnCount at the time). */
  readonly generation: number;
  /** False once that worker died or was retired: calls then reject without reaching any worker. */
  readonly alive: boolean;
  call<R>(fn: (remote: Comlink.Remote<Api>) => Promise<R>): Promise<R>;
}

export interface WorkerClientOptions<Api> {
  spawn: SpawnWorker;
  /** Runs on every fresh worker before the first call (load the model again, etc.). */
  onSpawn?: (remote: Comlink.Remote<Api>) => Promise<void>;
  /** How long a new worker may take to start. */
  startTimeoutMs?: number;
  /** A label for error messages. */
  label?: string;
}

let counter = 0;

/**
 * True for a DEVICE_LOST that a call got without running: it reached its worker after the worker
 * had recorded the loss (so the worker refused it), or the worker's loss report says the call
 * had not arrived yet. Such a call can be sent again to a fresh worker; one that may have run on
 * the lost device (a stream it was producing, a run that failed) cannot, and keeps its error.
 */
export function startedAfterLoss(err: unknown): boolean {
  return err instanceof WhittleError && err.code === 'DEVICE_LOST' && err.details.afterLoss === true;
}

export class WorkerClient<Api> {
  private current: Promise<Generation<Api>> | null = null;
  private generations = 0;
  private disposed = false;
  /** How many workers this client has started (a restart after a death increments it). */
  get spawnCount(): number {
    return this.generations;
  }

  constructor(private readonly options: WorkerClientOptions<Api>) {
    installErrorTransfer();
  }

  /**
   * Runs `fn` against the live worker; rejects with WORKER_DIED if the worker dies meanwhile.
   * A call that reached a worker whose device was already lost (startedAfterLoss) runs once more
   * on a fresh worker, so `fn` must build its arguments (transferred copies included) each time
   * it is called.
   */
  async call<R>(fn: (remote: Comlink.Remote<Api>) => Promise<R>): Promise<R> {
    if (this.disposed) throw new WhittleError('INVALID_ARGUMENT', `${this.label} was disposed`);
    try {
      return await this.race(await this.generation(), fn);
    } catch (err) {
      if (!startedAfterLoss(err) || this.disposed) throw err;
      return this.race(await this.generation(), fn); // that worker is retired: this starts a fresh one
    }
  }

  /**
   * The live worker (started if none is), as a handle whose calls reach that worker only; see
   * PinnedWorker.
   */
  async pin(): Promise<PinnedWorker<Api>> {
    if (this.disposed) throw new WhittleError('INVALID_ARGUMENT', `${this.label} was disposed`);
    const gen = await this.generation();
    return {
      generation: gen.id,
      get alive() {
        return gen.alive;
      },
      // A dead generation's `dead` has already rejected with why it died.
      call: <R>(fn: (remote: Comlink.Remote<Api>) => Promise<R>): Promise<R> => (gen.alive ? this.race(gen, fn) : gen.dead),
    };
  }

  /** The underlying Worker of the current generation (for tests and devtools). */
  async worker(): Promise<Worker> {
    return (await this.generation()).worker;
  }

  dispose(): void {
    this.disposed = true;
    const current = this.current;
    this.current = null;
    void current?.then((g) => this.retire(g, new WhittleError('INVALID_ARGUMENT', `${this.label} was disposed`))).catch(() => undefined);
  }

  private get label(): string {
    return this.options.label ?? 'worker';
  }

  private async generation(): Promise<Generation<Api>> {
    // Re-checked after each wait: callers that found the same dead worker together (the calls a
    // death rejected, retrying) share the one fresh worker the first of them starts.
    while (this.current) {
      const current = this.current;
      const gen = await current;
      if (gen.alive) return gen;
      if (this.current === current) this.current = null; // it died since: start over
    }
    const starting = this.start();
    this.current = starting;
    starting.catch(() => {
      if (this.current === starting) this.current = null;
    });
    return starting;
  }

  /**
   * A call on `gen`, rejected by its death. A DEVICE_LOST from the worker itself ends the worker
   * too: its run may fail on the lost device before the device's `lost` promise has told the
   * worker's owner (DEVICE_LOST_MESSAGE), and the next call must not reach it.
   */
  private race<R>(gen: Generation<Api>, fn: (remote: Comlink.Remote<Api>) => Promise<R>): Promise<R> {
    if (!gen.alive) return gen.dead; // it died since: `dead` has rejected with why
    const call = fn(gen.remote).catch((err: unknown) => {
      if (err instanceof WhittleError && err.code === 'DEVICE_LOST') this.retire(gen, err);
      throw err;
    });
    // Comlink posts a call's message synchronously inside fn: this is its place in the worker's count.
    const sent = gen.posted;
    const settled = new Promise<R>((resolve, reject) => {
      gen.pending.add(reject);
      call.then(
        (value) => {
          gen.pending.delete(reject);
          resolve(value);
        },
        (err: unknown) => {
          gen.pending.delete(reject);
          reject(err);
        },
      );
    });
    return settled.catch((err: unknown) => {
      // Rejected by the loss report (gen.dead), but sent after the worker had recorded the loss:
      // the worker refused it unrun (its own reply, crossing the report, is lost with the worker).
      if (err instanceof WhittleError && err.code === 'DEVICE_LOST' && !startedAfterLoss(err) && gen.callsBeforeLoss !== null && sent > gen.callsBeforeLoss) {
        throw new WhittleError('DEVICE_LOST', err.message, { ...err.details, afterLoss: true });
      }
      throw err;
    });
  }

  /** Ends a generation on purpose: its pending calls reject with `why` instead of waiting forever. */
  private retire(gen: Generation<Api>, why: WhittleError): void {
    if (!gen.alive) return;
    gen.alive = false;
    gen.markDead(why);
    gen.remote[Comlink.releaseProxy]();
    gen.worker.terminate();
  }

  private async start(): Promise<Generation<Api>> {
    const id = ++this.generations;
    const name = `whittle-${this.label}-${Date.now().toString(36)}-${(counter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
    const worker = this.options.spawn(name);
    let rejectDead!: (err: WhittleError) => void;
    const dead = new Promise<never>((_, reject) => {
      rejectDead = reject;
    });
    dead.catch(() => undefined); // observed by onSpawn and pinned calls; never an unhandled rejection
    let deadReason: WhittleError | null = null;
    const markDead = (err: WhittleError) => {
      if (deadReason) return;
      deadReason = err;
      rejectDead(err);
      for (const reject of gen.pending) reject(err);
      gen.pending.clear();
    };
    // The worker as Comlink's endpoint, counting the calls posted to it (see Generation.posted).
    const endpoint: Comlink.Endpoint = {
      postMessage: (message: unknown, transfer?: Transferable[]) => {
        if ((message as { type?: unknown } | null)?.type === 'APPLY') gen.posted++;
        worker.postMessage(message, transfer ?? []);
      },
      addEventListener: worker.addEventListener.bind(worker),
      removeEventListener: worker.removeEventListener.bind(worker),
    };
    const gen: Generation<Api> = { id, worker, remote: Comlink.wrap<Api>(endpoint), posted: 0, callsBeforeLoss: null, dead, alive: true, markDead, pending: new Set() };

    const died = (why: string) => {
      if (!gen.alive) return;
      gen.alive = false;
      markDead(new WhittleError('WORKER_DIED', `the ${this.label} worker died (${why}); the next call starts a fresh one`, { generation: id }));
      gen.worker.terminate();
    };

    const lockHeld = await new Promise<boolean>((resolve, reject) => {
      const timeout = setTimeout(() => {
        reject(new WhittleError('WORKER_DIED', `the ${this.label} worker did not start within ${this.options.startTimeoutMs ?? 30000} ms`));
        worker.terminate();
      }, this.options.startTimeoutMs ?? 30000);
      const onMessage = (ev: MessageEvent) => {
        const data = ev.data as { type?: string; lock?: boolean } | null;
        if (data?.type !== READY_MESSAGE) return;
        clearTimeout(timeout);
        worker.removeEventListener('message', onMessage);
        // After start-up an error event is an uncaught error in a live worker, not a failed start.
        worker.removeEventListener('error', onStartError);
        resolve(data.lock === true);
      };
      const onStartError = (ev: Event) => {
        clearTimeout(timeout);
        const message = ev instanceof ErrorEvent && ev.message ? ev.message : `script failed to load${STARTUP_HINT}`;
        reject(new WhittleError('WORKER_DIED', `the ${this.label} worker failed to start: ${message}`));
        died(message);
      };
      worker.addEventListener('message', onMessage);
      worker.addEventListener('error', onStartError, { once: true });
    });
    if (lockHeld) {
      // Granted only when the worker releases it, i.e. when it is gone.
      void navigator.locks.request(name, async () => died('it stopped running'));
    }
    worker.addEventListener('message', (ev: MessageEvent) => {
      const data = ev.data as { type?: string; message?: string; reason?: string; calls?: number } | null;
      if (data?.type !== DEVICE_LOST_MESSAGE) return;
      // Calls posted after the first `calls` reached the worker after it knew (see race()).
      if (typeof data.calls === 'number') gen.callsBeforeLoss = data.calls;
      // Its sessions died with the device and cannot move to another: calls in flight reject
      // with DEVICE_LOST now (some would never settle), and the next call starts a fresh worker,
      // whose onnxruntime asks for a fresh device.
      this.retire(gen, new WhittleError('DEVICE_LOST', `${data.message ?? 'the WebGPU device was lost'} (${this.label})`, { generation: id, reason: data.reason ?? 'unknown' }));
    });
    worker.addEventListener('error', (ev) => {
      // An uncaught error inside a worker does not stop it; report it, keep going.
      console.warn(`[whittle] uncaught error in the ${this.label} worker:`, ev instanceof ErrorEvent ? ev.message : ev);
    });
    if (this.options.onSpawn) {
      try {
        await Promise.race([this.options.onSpawn(gen.remote), dead]);
      } catch (err) {
        // A worker whose load failed (a model it rejects, say) still holds onnxruntime and
        // whatever it read: nobody will call it, so end it now.
        this.retire(gen, err instanceof WhittleError ? err : new WhittleError('INTERNAL', `the ${this.label} worker failed to load`));
        throw err;
      }
    }
    return gen;
  }
}

/**
 * A client whose every fresh worker runs `load` (init + model transfer) before any call, started
 * and loaded once: resolves with the first load's result. After a worker death the next call
 * spawns a new worker and `load` runs again; its result goes to `onReload`.
 *
 * @example
 * const { client, info } = await startLoaded<CodecService, CodecInfo>({ spawn, label: 'codec:lyra', load: async (r) => { await r.init(rt); return r.load(bytes()); } });
 */
export async function startLoaded<Api, Info>(options: { spawn: SpawnWorker; label: string; load: (remote: Comlink.Remote<Api>) => Promise<Info>; onReload?: (info: Info) => void }): Promise<{ client: WorkerClient<Api>; info: Info }> {
  let first: { info: Info } | null = null;
  const client = new WorkerClient<Api>({
    spawn: options.spawn,
    label: options.label,
    onSpawn: async (remote) => {
      const info = await options.load(remote);
      if (first) options.onReload?.(info);
      else first = { info };
    },
  });
  try {
    await client.call(async () => undefined);
    if (!first) throw new WhittleError('INTERNAL', `${options.label} did not load`);
  } catch (err) {
    client.dispose(); // the caller gets no handle to dispose: a failed load must leave nothing running
    throw err;
  }
  return { client, info: (first as { info: Info }).info };
}
