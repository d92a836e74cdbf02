import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('./whittle.mjs', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park.';
const generate = (...extra: string[]) => run('generate', '--model', 'stories260K', '--prompt', prompt, '--max-tokens', '24', '--greedy', '--json', ...extra);

interface Out {
  tokens: number[];
  stats: { dropout?: { members: number; context: { positions: number[] }; steps: number; dropsPerMember: number[] } };
}

describe('whittle generate --dropout', () => {
  it('runs dropout decoding over the marked ranges and reports it; --members 0 is plain decoding', () => {
    const plain = generate();
    expect(plain.status, plain.stderr).toBe(0);
    const r = generate('--dropout', '--context', '1:10,15:20', '--members', '3', '--rates', '0.3,0.5,0.7', '--dropout-seed', '5');
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as Out;
    expect(out.stats.dropout).toMatchObject({ members: 3, steps: 24 });
    expect(out.stats.dropout!.context.positions).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 18, 19]);
    const none = generate('--dropout', '--members', '0');
    expect(none.status, none.stderr).toBe(0);
    expect((JSON.parse(none.stdout) as Out).tokens).toEqual((JSON.parse(plain.stdout) as Out).tokens);
  });

  it('bad dropout options fail with INVALID_ARGUMENT', () => {
    const r = generate('--dropout', '--rates', '0.5');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/INVALID_ARGUMENT|rates must be/);
    const orphan = generate('--members', '2');
    expect(orphan.status).not.toBe(0);
    expect(orphan.stderr).toMatch(/--members needs --dropout/);
  });
});
