/** `whittle codec` subcommands (sdk/cli/codec.ts) end to end on real files. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { runCodecCommand } from '../../sdk/cli/codec.ts';
import { localModelFile } from '../../models/local.ts';
import { parseWav, writeWav } from '../../core/wav.ts';

describe('whittle codec CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'whittle-codec-'));
  // The first 1.5 s of the 48 kHz clip keeps the test short; resampling is still exercised.
  const input = join(dir, 'in48k.wav');
  const full = parseWav(readFileSync(localModelFile('lyra-testdata', 'sample2_48kHz.wav')), { mono: true, sampleRate: 48000 });
  writeFileSync(input, new Uint8Array(writeWav(full.samples.subarray(0, 72000), 48000)));

  it('encode -> decode at 3.2 kbps from a 48 kHz file; roundtrip --json reports the distance', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await runCodecCommand(['encode', input, join(dir, 'a.lyra'), '--kbps', '3.2'])).toBe(0);
      const stream = readFileSync(join(dir, 'a.lyra'));
      expect(stream[0]).toBe(16); // first packet header: 16 quantizers
      expect(stream.length % (3 + 8)).toBe(0); // 3-byte header + 64 bits per frame
      expect(await runCodecCommand(['decode', join(dir, 'a.lyra'), join(dir, 'a.wav'), '--rate', '48000'])).toBe(0);
      const out = parseWav(readFileSync(join(dir, 'a.wav')), { mono: true, sampleRate: 48000 });
      expect(out.samples.length).toBe((stream.length / 11) * 960);
      expect(await runCodecCommand(['roundtrip', input, join(dir, 'b.wav'), '--quantizers', '46', '--json'])).toBe(0);
      const result = JSON.parse(String(log.mock.calls.at(-1)![0])) as { quantizers: number; logSpectralDistanceDb: number };
      expect(result.quantizers).toBe(46);
      expect(result.logSpectralDistanceDb).toBeLessThan(12);
    } finally {
      log.mockRestore();
      err.mockRestore();
    }
  }, 60_000);

  it('rates lists the 46 supported rates', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await runCodecCommand(['rates', '--json'])).toBe(0);
      const rates = JSON.parse(String(log.mock.calls.at(-1)![0])) as { quantizers: number; kbps: number; reference: boolean }[];
      expect(rates).toHaveLength(46);
      expect(rates.filter((r) => r.reference).map((r) => r.kbps)).toEqual([3.2, 6, 9.2]);
    } finally {
      log.mockRestore();
    }
  });

  it('bad input is exit code 2 with a typed message', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await runCodecCommand(['encode', localModelFile('lyra-testdata', 'invalid.wav'), join(dir, 'x.lyra')])).toBe(2);
      expect(String(err.mock.calls.at(-1)![0])).toMatch(/INVALID_ARGUMENT: WAV: not a RIFF/);
      expect(await runCodecCommand(['encode', input, join(dir, 'x.lyra'), '--kbps', '7.1'])).toBe(2);
      expect(await runCodecCommand(['frobnicate'])).toBe(2);
      writeFileSync(join(dir, 'bad.lyra'), Uint8Array.of(99, 0, 0));
      expect(await runCodecCommand(['decode', join(dir, 'bad.lyra'), join(dir, 'bad.wav')])).toBe(2);
    } finally {
      err.mockRestore();
    }
  });
});
