/** whittle.json from a hostile host (fuzz finding of scripts/fuzz/targets/folder-manifest.ts, minimized). */
import { describe, expect, it } from 'vitest';
import { parseFolderManifest } from './folder-manifest.ts';

describe('whittle.json: hostile values', () => {
  it('a "whittle" version nested 100,000 deep is BAD_MODEL (the message does not serialize it)', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}1${']'.repeat(100_000)}`) as unknown;
    expect(() => parseFolderManifest({ whittle: deep, files: [] })).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    expect(() => parseFolderManifest({ whittle: 2, files: [] })).toThrow(/"whittle" must be 1 \(the format version\), got 2/);
  });
});
