/**
 * releaseNow frees what the caller made and nothing else: the whole-buffer array it is given
 * (its memory gone at once, every view of it empty), never a view into part of a shared buffer.
 * Runs where ArrayBuffer.prototype.transfer exists (vitest.config.ts turns it on for Node 20).
 */
import { describe, expect, it } from 'vitest';
import { arraysIn, canReleaseNow, releaseAllIn, releaseNow } from './release.ts';

describe.skipIf(!canReleaseNow)('releaseNow', () => {
  it('empties an array that owns its whole buffer, and every view of it', () => {
    const a = new Float32Array(1024).fill(1);
    const alias = new Uint8Array(a.buffer);
    releaseNow(a);
    expect(a.length).toBe(0);
    expect(alias.length).toBe(0);
    expect((a.buffer as ArrayBuffer & { detached: boolean }).detached).toBe(true);
    releaseNow(a); // twice is harmless
  });

  it('leaves views into part of a buffer, and nulls, alone', () => {
    const whole = new Float32Array(16).fill(2);
    const part = whole.subarray(4, 8);
    releaseNow(part);
    releaseNow(null);
    expect(whole.length).toBe(16);
    expect(part).toEqual(new Float32Array(4).fill(2));
  });

  it('finds and releases every typed array inside a prepared-layer-like object', () => {
    const layer = { attnNorm: new Float32Array(4), qkv: { kind: 'int8', weight: { K: 2, N: 2, b: new Int8Array(4), scales: new Float32Array(2) } }, hidden: 3 };
    expect(arraysIn(layer)).toHaveLength(3);
    releaseAllIn(layer);
    expect([layer.attnNorm.length, layer.qkv.weight.b.length, layer.qkv.weight.scales.length]).toEqual([0, 0, 0]);
  });
});
