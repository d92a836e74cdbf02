/**
 * The error `seedModelCache` throws when the page's seeding failed: the page's WhittleError
 * (carried back from `page.evaluate` as a wire error, which would otherwise arrive as a bare
 * message) rebuilt with its code and details, its message prefixed with what was being seeded.
 *
 * A QUOTA failure says what to do about it. Playwright's default context (`browser.newContext`)
 * has no user-data dir: Chromium keeps its storage in memory under a small quota, which a model
 * of a few GB outgrows (the 2.48 GB Llama-3.2-1B folder did). A persistent context keeps storage
 * on disk under the profile's much larger quota; in one, running out means the disk itself.
 *
 * @example
 * const outcome = await page.evaluate((r) => whittlePlaywright.seed(r), request);
 * if (!outcome.ok) throw seedFailure(outcome.error, { model: 'stories260K', origin, bytes, persistent: (await contextKind(page)) === 'persistent' });
 */
import { fromWire, WhittleError, type WireError } from '../../core/errors.ts';

/** What the failed seeding was about, for the message. */
export interface SeedFailureContext {
  /** The model's id (a folder URL or a registry id). */
  model: string;
  origin: string;
  /** The model's bytes. */
  bytes: number;
  /** Whether the page's context has a user-data dir (`launchPersistentContext`; context-kind.ts). */
  persistent: boolean;
}

/** What the quota message tells a user in a context without a user-data dir. */
export const PERSISTENT_CONTEXT_HINT =
  "Playwright's default context has no user-data dir, so Chromium keeps storage in memory under a small quota: " +
  "run the test in a persistent context (import { whittlePersistentTest as test } from 'whittle/playwright')";

/**
 * The WhittleError to throw for the page's error: same code and details, a message that names the
 * model and origin, and for QUOTA what to do (see the top of this file). The store has removed
 * whatever this seeding wrote before the page answered.
 */
export function seedFailure(error: WireError, context: SeedFailureContext): WhittleError {
  const fromPage = fromWire(error);
  const what = `seedModelCache: ${context.model} (${context.bytes} bytes) on ${context.origin}`;
  if (fromPage.code !== 'QUOTA') return rebuilt(fromPage, `${what}: ${fromPage.message}`);
  const advice = context.persistent
    ? "this context is persistent already, so the profile's disk is what ran out: free space there, or seed fewer files"
    : PERSISTENT_CONTEXT_HINT;
  return rebuilt(
    fromPage,
    `${what}: the browser's storage quota ran out (${fromPage.message}); nothing of this seeding was kept. ${advice}`,
  );
}

function rebuilt(from: WhittleError, message: string): WhittleError {
  // A new error, so its stack is the runner's: Playwright points at the test line that seeded.
  return new WhittleError(from.code, message, from.details);
}
