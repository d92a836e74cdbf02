/**
 * The error seedModelCache throws for the page's failure: the page's code and details kept, the
 * model and origin named, and for QUOTA the advice that fits the context it happened in.
 */
import { describe, expect, it } from 'vitest';
import { toWire, WhittleError } from '../../core/errors.ts';
import { PERSISTENT_CONTEXT_HINT, seedFailure } from './seed-error.ts';

const context = { model: '/models/llama/', origin: 'http://127.0.0.1:4173', bytes: 2_480_795_158, persistent: false };
const quota = toWire(new WhittleError('QUOTA', 'storage quota exceeded while writing 3a7bd3e2', {}));

describe('seedFailure', () => {
  it('a QUOTA in the default context is a QUOTA WhittleError that says to use the persistent context', () => {
    const err = seedFailure(quota, context);
    expect(err).toBeInstanceOf(WhittleError);
    expect(err.code).toBe('QUOTA');
    expect(err.message).toBe(
      "seedModelCache: /models/llama/ (2480795158 bytes) on http://127.0.0.1:4173: the browser's storage quota ran out (storage quota exceeded while writing 3a7bd3e2); nothing of this seeding was kept. " +
        PERSISTENT_CONTEXT_HINT,
    );
    expect(PERSISTENT_CONTEXT_HINT).toContain('whittlePersistentTest');
  });

  it('a QUOTA in a persistent context points at the disk instead', () => {
    const err = seedFailure(quota, { ...context, persistent: true });
    expect(err.code).toBe('QUOTA');
    expect(err.message).not.toContain(PERSISTENT_CONTEXT_HINT);
    expect(err.message).toMatch(/this context is persistent already, so the profile's disk is what ran out/);
  });

  it('other codes keep their code and details, with the model named', () => {
    const integrity = toWire(
      new WhittleError('INTEGRITY', 'importChunks: tok512.bin has sha256 ab, the manifest says cd', { file: 'tok512.bin' }),
    );
    const err = seedFailure(integrity, context);
    expect(err.code).toBe('INTEGRITY');
    expect(err.details).toEqual({ file: 'tok512.bin' });
    expect(err.message).toBe(
      'seedModelCache: /models/llama/ (2480795158 bytes) on http://127.0.0.1:4173: importChunks: tok512.bin has sha256 ab, the manifest says cd',
    );
  });

  it("an error that was no WhittleError in the page arrives as INTERNAL with the page's message", () => {
    const err = seedFailure(toWire(new TypeError('x is not a function')), context);
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toMatch(/: TypeError: x is not a function$/);
  });
});
