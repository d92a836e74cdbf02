/**
 * How this project starts Debian's Chromium, for the Playwright config and the benchmarks alike:
 * the executable (never a Playwright download) and the flags this machine needs (no background
 * networking, whose connections the closed network refuses; WebGPU exposed, SwiftShader here).
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--enable-unsafe-webgpu',
];
