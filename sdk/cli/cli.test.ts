import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('./whittle.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });

describe('whittle CLI', () => {
  it('generate --json prints run.c greedy tokens for stories260K', () => {
    const r = run('generate', '--model', 'stories260K', '--prompt', '', '--max-tokens', '20', '--greedy', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number[]; text: string; stats: { generatedTokens: number } };
    expect(out.tokens).toEqual([403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337]);
    expect(out.text.startsWith('Once upon a time')).toBe(true);
    expect(out.stats.generatedTokens).toBe(20);
  });

  it('--speculate --exit E --draft D keeps the full-depth greedy tokens', () => {
    const r = run('generate', '--model', 'stories260K', '--max-tokens', '12', '--greedy', '--speculate', '--exit', '4', '--draft', '2', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number[]; stats: { speculation: { drafted: number; exit: number; draft: number; tokensPerRound: number } } };
    expect(out.tokens).toEqual([403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421]);
    expect(out.stats.speculation).toMatchObject({ exit: 4, draft: 2 });
    expect(out.stats.speculation.drafted).toBeGreaterThan(0);
    expect(out.stats.speculation.tokensPerRound).toBeGreaterThanOrEqual(1);
  });

  it('--speculate alone calibrates the exit and adapts the draft, still the full-depth greedy tokens', () => {
    const r = run('generate', '--model', 'stories260K', '--max-tokens', '12', '--greedy', '--speculate', '--json');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { tokens: number[]; stats: { speculation: { exit: number; draft: string; calibration: { predictedSpeedup: number } } } };
    expect(out.tokens).toEqual([403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421]);
    expect(out.stats.speculation.draft).toBe('auto');
    expect(out.stats.speculation.exit).toBeGreaterThanOrEqual(1);
    expect(out.stats.speculation.exit).toBeLessThan(5);
    expect(out.stats.speculation.calibration.predictedSpeedup).toBeGreaterThan(0);
  });

  it('models --json lists registry models with local presence', () => {
    const r = run('models', '--json');
    expect(r.status, r.stderr).toBe(0);
    const list = JSON.parse(r.stdout) as { id: string; present: boolean }[];
    expect(list.find((m) => m.id === 'stories260K')?.present).toBe(true);
  });

  it('exits 2 with an INVALID_ARGUMENT message on a bad plan', () => {
    const r = run('generate', '--model', 'stories260K', '--layers', '0,9', '--max-tokens', '2');
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('INVALID_ARGUMENT');
  });
});
