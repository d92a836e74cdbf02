/**
 * TextService's stream bookkeeping, on the real engine (stories260K, onnxruntime-web WASM in
 * Node): every way a stream ends (drained to `done`, cancelled at any point, failed, finished
 * but never drained and then cancelled, which is what a consumer's `break` sends) leaves no
 * stream state behind, and a generation started right after a cancel runs.
 */
import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import type { TextEvent } from '../../core/text-types.ts';
import { TextService } from './service.ts';

const GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];
/** Long enough that a stream is still generating (or paused on backpressure) when it is cancelled. */
const LONG = { maxTokens: 300, greedy: true, stopTokens: [] };

async function drain(service: TextService, id: number): Promise<TextEvent[]> {
  const all: TextEvent[] = [];
  for (;;) {
    const { events, done } = await service.next(id);
    all.push(...events);
    if (done) return all;
  }
}

/** Resolves once no pump is generating (cancelled ones stop within a step). */
async function settled(service: TextService): Promise<{ held: number; running: number }> {
  const until = Date.now() + 10_000;
  while (service.streamStats().running > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 5));
  return service.streamStats();
}

describe('TextService streams', async () => {
  const service = new TextService();
  await service.init({ backend: 'wasm', numThreads: 1 });
  await service.load({ format: 'llama2c', checkpoint: readLocalModelFile('stories260K', 'stories260K.bin'), tokenizer: readLocalModelFile('stories260K', 'tok512.bin') });
  const N = 4;

  it('holds nothing after completed, cancelled, failed and abandoned streams', async () => {
    for (let i = 0; i < N; i++) {
      // Completed: drained to its done event.
      const done = await drain(service, service.start([1], { maxTokens: 5, greedy: true, stopTokens: [] }));
      expect(done.at(-1)?.type).toBe('done');

      // Cancelled before the consumer read anything.
      service.cancel(service.start([1], LONG));

      // Abandoned mid-stream: read one batch, then stop (what TextModel sends on break/return()),
      // with the pump paused on backpressure or computing the next step.
      const abandoned = service.start([1], LONG);
      expect((await service.next(abandoned)).events.length).toBeGreaterThan(0);
      service.cancel(abandoned);

      // Cancelled while a next() waits for the next event: that next() ends, the stream goes.
      const waited = service.start([1], LONG);
      await service.next(waited);
      const pending = service.next(waited).then(
        () => 'resolved',
        (e: { code?: string }) => e.code,
      );
      service.cancel(waited);
      expect(['resolved', 'ABORTED']).toContain(await pending);

      // Failed: the error arrives through next(), after which the stream is gone.
      const failed = service.start([1], { maxTokens: -1 });
      await expect(drain(service, failed)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

      // Finished but never drained, then cancelled (a consumer that broke out after the last step).
      const undrained = service.start([1], { maxTokens: 3, greedy: true, stopTokens: [] });
      await settled(service);
      service.cancel(undrained);
    }
    expect(await settled(service)).toEqual({ held: 0, running: 0 });
    // A cancelled stream is gone, not waiting to be read.
    await expect(service.next(2)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('a generation started right after a cancel runs (the cancelled one stops first)', async () => {
    for (let i = 0; i < N; i++) {
      const first = service.start([1], LONG);
      await service.next(first);
      service.cancel(first);
      const events = await drain(service, service.start([1], { maxTokens: 20, greedy: true, stopTokens: [] }));
      const last = events.at(-1);
      expect(last?.type === 'done' ? last.tokens : null).toEqual(GOLDEN);
    }
    expect(await settled(service)).toEqual({ held: 0, running: 0 });
  });
});
