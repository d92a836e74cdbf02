/**
 * The Node flag that turns on ArrayBuffer.prototype.transfer where Node has it only behind one
 * (Node 20; Chromium and Node 21+ ship it): child processes given it release load-time arrays as
 * a browser tab does (core/release.ts). Used by vitest.config.ts (every test runs the releases, so
 * a use after release fails here) and bench/load-memory.ts (memory as a tab would see it).
 */
export const TRANSFER_FLAG: string[] =
  typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer !== 'function' && process.versions.node.startsWith('20.') ? ['--harmony-rab-gsab-transfer'] : [];
