/**
 * `whittle compress`: stories-layerskip -> a q4 g32 variant folder (model.whittle.safetensors,
 * config and tokenizer files, whittle.json) -> `whittle generate --model <folder>` gives the same
 * greedy tokens as compressing in memory (`--weights q4 --group 32`), from a third of the bytes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { localModelFile } from '../../models/local.ts';
import { parseFolderManifest } from '../store/folder-manifest.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { TextEngine } from '../../workers/text/engine.ts';
import { openVariantFolder } from './compress.ts';
import { openModelArg } from './load.ts';

const bin = fileURLToPath(new URL('./whittle.mjs', import.meta.url));
function run(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(), 120_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

const dir = mkdtempSync(join(tmpdir(), 'whittle-compress-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ARGS = ['--prompt', 'Once upon a time', '--max-tokens', '16', '--greedy', '--json'];
const tokensOf = (r: { status: number | null; stdout: string; stderr: string }) => {
  expect(r.status, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { tokens: number[] }).tokens;
};

describe('whittle compress', () => {
  it('writes a verified variant folder that generates the tokens of in-memory compression', { timeout: 300_000 }, async () => {
    const made = await run('compress', 'stories-layerskip', '--weights', 'q4', '--group', '32', '--out', dir, '--json');
    expect(made.status, made.stderr).toBe(0);
    const result = JSON.parse(made.stdout) as { tag: string; variantBytes: number };
    expect(result.tag).toBe('q4-g32-rtn');
    const manifest = parseFolderManifest(JSON.parse(readFileSync(join(dir, 'whittle.json'), 'utf8')));
    expect(manifest.files.map((f) => f.name).sort()).toEqual(['config.json', 'generation_config.json', 'model.whittle.safetensors', 'tokenizer.json', 'tokenizer_config.json']);
    expect(manifest.revision).toBe('whittle-recipe-1+q4-g32-rtn');
    const sourceBytes = statSync(localModelFile('stories-layerskip', 'model.safetensors')).size;
    expect(result.variantBytes).toBeLessThan(sourceBytes / 3);

    const inMemory = tokensOf(await run('generate', '--model', 'stories-layerskip', '--weights', 'q4', '--group', '32', ...ARGS));
    expect(inMemory).toHaveLength(16);
    expect(tokensOf(await run('generate', '--model', dir, ...ARGS))).toEqual(inMemory);
    const refused = await run('generate', '--model', dir, '--weights', 'q8', ...ARGS);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/is a compressed variant/);
  });

  it('--sparsity 2:4 --weights f32: a sparse variant at most 60% of the source bytes, whose weights generate what compressing in memory does', { timeout: 300_000 }, async () => {
    const out = join(dir, 'sparse');
    const made = await run('compress', 'stories-layerskip', '--weights', 'f32', '--sparsity', '2:4', '--out', out, '--json');
    expect(made.status, made.stderr).toBe(0);
    const result = JSON.parse(made.stdout) as { tag: string; variantBytes: number };
    expect(result.tag).toBe('f32-rtn-sparse24-wanda');
    expect(result.variantBytes).toBeLessThanOrEqual(0.6 * statSync(localModelFile('stories-layerskip', 'model.safetensors')).size);
    // The folder's weights against the engine's own sparse compress of the source.
    const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
    const variant = await openVariantFolder(out);
    const fromFolder = new TextEngine(ort, 'wasm', variant.model, variant.prepared, { compress: variant.info.setting });
    await fromFolder.setPlan();
    const inMemory = await TextEngine.create(ort, 'wasm', await openModelArg('stories-layerskip'));
    await inMemory.compress({ linear: 'f32', sparsity: { pattern: '2:4' } });
    const prompt = inMemory.tokenIds('Once upon a time');
    expect(await fromFolder.logits(prompt)).toEqual(await inMemory.logits(prompt));
    await Promise.all([fromFolder.dispose(), inMemory.dispose()]);
    const bad = await run('compress', 'stories-layerskip', '--weights', 'q8', '--sparsity', '3:4', '--out', out);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--sparsity must be 2:4 or unstructured/);
  });

  it('refuses a missing --weights or --out with a usage error', async () => {
    const r = await run('compress', 'stories-layerskip', '--out', dir);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--weights q8 or q4/);
  });
});
