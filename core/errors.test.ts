import { describe, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import { MessageChannel } from 'node:worker_threads';
import { WhittleError, fromWire, toWire, asWhittleError } from './errors.ts';
import { installErrorTransfer } from './rpc-errors.ts';

describe('WhittleError wire format', () => {
  it('round-trips code, message and details through structured clone', () => {
    const err = new WhittleError('INTEGRITY', 'sha256 mismatch', { file: 'a.bin', expected: 'aa', actual: 'bb' });
    const back = fromWire(structuredClone(toWire(err)));
    expect(back).toBeInstanceOf(WhittleError);
    expect(back.code).toBe('INTEGRITY');
    expect(back.message).toBe('sha256 mismatch');
    expect(back.details).toEqual({ file: 'a.bin', expected: 'aa', actual: 'bb' });
  });

  it('maps AbortError to ABORTED and unknown errors to INTERNAL', () => {
    expect(asWhittleError(new DOMException('stop', 'AbortError')).code).toBe('ABORTED');
    const wire = toWire(new TypeError('boom'));
    expect(wire.code).toBe('INTERNAL');
    expect(wire.message).toContain('TypeError: boom');
  });

  it('rejects a forged code as INTERNAL', () => {
    const forged = { whittle: true as const, code: 'NOPE' as never, message: 'x', details: {} };
    expect(fromWire(forged).code).toBe('INTERNAL');
  });

  it('crosses a real comlink channel intact', async () => {
    installErrorTransfer();
    const { port1, port2 } = new MessageChannel();
    const api = {
      fail(): string {
        throw new WhittleError('QUOTA', 'need 10 bytes, have 3', { needed: 10, available: 3 });
      },
    };
    // node:worker_threads ports speak the same postMessage protocol comlink uses.
    Comlink.expose(api, port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<typeof api>(port2 as unknown as Comlink.Endpoint);
    const err = await remote.fail().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WhittleError);
    expect((err as WhittleError).code).toBe('QUOTA');
    expect((err as WhittleError).details).toEqual({ needed: 10, available: 3 });
    port1.close();
    port2.close();
  });
});
