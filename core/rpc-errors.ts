/**
 * Makes errors cross the worker boundary intact. Comlink's built-in "throw" handler keeps
 * only name/message/stack, so a `WhittleError`'s `code` and `details` would be lost; this
 * replaces it (on both sides: the SDK client and every worker entry call it) with one that
 * sends `toWire(err)` and rebuilds a real `WhittleError` on the other side.
 */
import * as Comlink from 'comlink';
import { fromWire, isWireError, toWire, type WireError } from './errors.ts';

interface Thrown {
  value: unknown;
}

let installed = false;

export function installErrorTransfer(): void {
  if (installed) return;
  const builtin = Comlink.transferHandlers.get('throw');
  if (!builtin) throw new Error('comlink has no "throw" transfer handler to replace');
  Comlink.transferHandlers.set('throw', {
    canHandle: (value: unknown): value is Thrown => builtin.canHandle(value),
    serialize: (thrown: unknown): [WireError, Transferable[]] => [toWire((thrown as Thrown).value), []],
    deserialize: (wire: unknown): never => {
      throw isWireError(wire) ? fromWire(wire) : fromWire(toWire(wire));
    },
  } as Comlink.TransferHandler<unknown, unknown>);
  installed = true;
}
