/**
 * `whittle generate --model <folder|url>`: a Hugging Face folder written as published checkpoints
 * are (stories-layerskip in three F32 shards with model.safetensors.index.json) gives the tokens
 * of the registry model, from a local path and over HTTP.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { reshardHfFolder } from '../../models/import/hf/testing/folder.ts';
import { serveFolder } from '../store/testing/serve-folder.ts';

const bin = fileURLToPath(new URL('./whittle.mjs', import.meta.url));
/** Async, so this process's HTTP server keeps answering while the CLI runs. */
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(), 90_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const names = ['config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];
const folder = reshardHfFolder(Object.fromEntries(names.map((n) => [n, readLocalModelFile('stories-layerskip', n)])), { dtype: 'F32', shards: 3 });
const dir = mkdtempSync(join(tmpdir(), 'whittle-cli-folder-'));
for (const [n, b] of Object.entries(folder)) writeFileSync(join(dir, n), new Uint8Array(b));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ARGS = ['--prompt', 'Once upon a time', '--max-tokens', '12', '--greedy', '--json'];
const tokensOf = (r: { status: number | null; stdout: string; stderr: string }) => {
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { tokens: number[] }).tokens;
};

describe('whittle generate --model <folder|url>', () => {
  it('a local sharded folder gives the registry model\'s greedy tokens; so does its URL with --integrity none', async () => {
    const registry = tokensOf(await run('generate', '--model', 'stories-layerskip', ...ARGS));
    expect(registry).toHaveLength(12);
    expect(tokensOf(await run('generate', '--model', dir, ...ARGS))).toEqual(registry);

    const server = await serveFolder(folder);
    try {
      expect(tokensOf(await run('generate', '--model', server.url, '--integrity', 'none', ...ARGS))).toEqual(registry);
      expect(server.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.safetensors'))).toHaveLength(3);
      const refused = await run('generate', '--model', server.url, ...ARGS);
      expect(refused.status).toBe(2);
      expect(refused.stderr).toMatch(/INVALID_ARGUMENT: .*integrity: 'none'/);
    } finally {
      await server.close();
    }
  });
});
