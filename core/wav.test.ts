/** parseWav over damaged files (fuzz finding of scripts/fuzz/targets/wav.ts, minimized). */
import { describe, expect, it } from 'vitest';
import { parseWav, writeWav } from './wav.ts';

describe('parseWav: damaged files', () => {
  it('an extensible fmt chunk that claims 40 bytes in a file that ends after 16 is truncated, not a RangeError', () => {
    const bytes = new Uint8Array(writeWav(new Float32Array(4), 16000)).slice(0, 36); // RIFF header + fmt chunk, no data
    const view = new DataView(bytes.buffer);
    view.setUint32(16, 40, true); // fmt size 40
    view.setUint16(20, 0xfffe, true); // WAVE_FORMAT_EXTENSIBLE
    expect(() => parseWav(bytes)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { reason: 'truncated' } }));
  });

  it('a complete file still parses', () => {
    const audio = parseWav(writeWav(Float32Array.of(0.5, -0.5), 16000));
    expect([audio.sampleRate, audio.channels, audio.samples.length]).toEqual([16000, 1, 2]);
  });

  it('a sample rate of 0 is unsupported-format', () => {
    const bytes = new Uint8Array(writeWav(Float32Array.of(0.5), 16000));
    new DataView(bytes.buffer).setUint32(24, 0, true);
    expect(() => parseWav(bytes)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', details: { reason: 'unsupported-format' } }));
  });
});
