/**
 * Abort points for long calls in a worker (perplexity, exit calibration, block scoring).
 *
 * A cancel from the page arrives as a message, and a worker handles messages only between tasks:
 * a loop that only awaits promises (or runs synchronous TypeScript passes) would see the abort
 * after it finished. So a checkpoint throws ABORTED when the signal fired and, every `sliceMs`,
 * lets queued tasks run first. It yields through a MessageChannel, not setTimeout(0), which
 * browsers clamp to 4 ms once nested.
 *
 * @example
 * const cp = new Checkpoint(signal);
 * for (const t of tokens) { await cp.pass(); await runner.step([t]); }
 */
import { throwIfAborted } from '../../core/errors.ts';

/** Resolves after the tasks already queued (a cancel message among them) had their turn. */
export function nextTask(): Promise<void> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    port1.onmessage = () => {
      port1.close(); // an open port keeps Node's event loop alive
      resolve();
    };
    port2.postMessage(null);
  });
}

export class Checkpoint {
  private last = performance.now();

  constructor(
    private readonly signal: AbortSignal | undefined,
    private readonly sliceMs = 8,
  ) {}

  /** Throws ABORTED if the signal fired; yields to queued tasks first when a slice has passed. */
  async pass(): Promise<void> {
    if (this.signal && performance.now() - this.last >= this.sliceMs) await this.yield();
    throwIfAborted(this.signal);
  }

  /** Yields to queued tasks now, then throws ABORTED if the signal fired (between long synchronous passes). */
  async now(): Promise<void> {
    if (this.signal) await this.yield();
    throwIfAborted(this.signal);
  }

  private async yield(): Promise<void> {
    await nextTask();
    this.last = performance.now();
  }
}
