/** validateManifest over hostile manifests (fuzz finding of scripts/fuzz/targets/manifest.ts, minimized). */
import { describe, expect, it } from 'vitest';
import { manifestBytes, validateManifest } from './manifest.ts';

const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('validateManifest: hostile sizes', () => {
  it('files whose sizes add up past 2^53 are BAD_MODEL (the total used for quota checks would be inexact)', () => {
    const file = (i: number, size = 2 ** 52) => ({ name: `f${i}`, url: `/f${i}`, size, sha256: SHA });
    expect(() => validateManifest({ id: 'm', revision: '1', files: [file(0), file(1), file(2)] })).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL' }),
    );
    expect(manifestBytes(validateManifest({ id: 'm', revision: '1', files: [file(0, 2 ** 52 - 1), file(1, 2 ** 52)] }))).toBe(2 ** 53 - 1);
  });
});
