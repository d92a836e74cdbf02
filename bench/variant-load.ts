/**
 * `npx tsx bench/variant-load.ts [--models stories-layerskip,synthetic-smollm2-135m] [--settings q4-g32,q8] [--rounds 3]`:
 * what a stored compressed variant saves at load (issue #13's goal: loading the cached variant at
 * least 3x faster than the first load with compression). Node, onnxruntime-web WASM, 1 thread,
 * the worker's own TextService, files as disk-backed Blobs (fs.openAsBlob) as the store hands them
 * to the worker. Per model x setting, medians (with ranges) of `rounds` fresh loads each of:
 *   compress_ms   load the source with `compress` (today's load: read, transpose, quantize, compile)
 *   make_ms       the same with `keepVariant` + exportVariant(): what a first load that saves the
 *                 variant costs in the worker (the page then writes it to the store: not timed here)
 *   variant_ms    load the variant folder (read, kernel forms, compile; no quantization)
 * and the greedy tokens of both paths (must be equal). Download time is left out on both sides (a
 * cached source vs a cached variant); a variant is also 2.3-3.5x fewer bytes to download.
 * Synthetic weights (models/synthetic/) measure speed only. The last line is one JSON object.
 */
import { mkdirSync, openAsBlob, readdirSync, statSync, writeFileSync, copyFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { localModelFile, REPO_ROOT } from '../models/local.ts';
import { VARIANT_FILE } from '../models/compress/variant.ts';
import { settingTag } from '../models/compress/variant-forms.ts';
import type { WeightsSetting } from '../models/llama/types.ts';
import { TextService } from '../workers/text/service.ts';

const { values: v } = parseArgs({
  options: { models: { type: 'string', default: 'stories-layerskip,synthetic-smollm2-135m' }, settings: { type: 'string', default: 'q4-g32' }, rounds: { type: 'string', default: '3' } },
});
const rounds = Number(v.rounds);
const SETTINGS: Record<string, WeightsSetting> = { 'q4-g32': { linear: 'q4', group: 32 }, 'q4-g64': { linear: 'q4', group: 64 }, q8: { linear: 'q8' } };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const stat = (xs: number[]) => ({ median: Math.round(median(xs)), min: Math.round(Math.min(...xs)), max: Math.round(Math.max(...xs)) });

async function blobsOf(dir: string, names: string[]): Promise<Record<string, Blob>> {
  return Object.fromEntries(await Promise.all(names.map(async (n) => [n, await openAsBlob(join(dir, n))] as const)));
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const out = await fn();
  return [performance.now() - t0, out];
}

async function service(): Promise<TextService> {
  const s = new TextService();
  await s.init({ backend: 'wasm', numThreads: 1 });
  return s;
}

const runs = [];
for (const model of v.models.split(',')) {
  const srcDir = join(localModelFile(model, 'config.json'), '..');
  const srcNames = readdirSync(srcDir).filter((n) => /\.(json|safetensors)$/.test(n));
  const sourceBytes = srcNames.filter((n) => n.endsWith('.safetensors')).reduce((s, n) => s + statSync(join(srcDir, n)).size, 0);
  for (const key of v.settings.split(',')) {
    const setting = SETTINGS[key];
    if (!setting) throw new Error(`unknown setting ${key} (${Object.keys(SETTINGS).join(', ')})`);
    const tag = settingTag(setting);
    const outDir = join(REPO_ROOT, 'bench/out/variants', `${model}-${tag}`);
    mkdirSync(outDir, { recursive: true });
    const compressMs: number[] = [];
    const makeMs: number[] = [];
    const variantMs: number[] = [];
    let sourceTokens: number[] = [];
    let variantTokens: number[] = [];
    let variantBytes = 0;
    for (let r = 0; r < rounds; r++) {
      // Interleaved, so a machine that gets busier slows every path alike.
      let s = await service();
      const [ms] = await timed(async () => s.load({ format: 'hf', files: await blobsOf(srcDir, srcNames) }, { compress: setting }));
      compressMs.push(ms);
      sourceTokens = (await s.complete('Once upon a time', { maxTokens: 8, greedy: true })).tokens;
      await s.dispose();

      s = await service();
      const [mk, parts] = await timed(async () => {
        await s.load({ format: 'hf', files: await blobsOf(srcDir, srcNames) }, { compress: setting, keepVariant: true });
        return s.exportVariant({ id: model, revision: 'bench' });
      });
      makeMs.push(mk);
      await s.dispose();
      variantBytes = parts.reduce((a, p) => a + p.byteLength, 0);
      writeFileSync(join(outDir, VARIANT_FILE), Buffer.concat(parts.map((p) => new Uint8Array(p))));
      for (const n of srcNames.filter((n) => !n.endsWith('.safetensors') && n !== 'model.safetensors.index.json')) copyFileSync(join(srcDir, n), join(outDir, n));

      s = await service();
      const names = readdirSync(outDir);
      const [vm] = await timed(async () => s.load({ format: 'variant', files: await blobsOf(outDir, names) }));
      variantMs.push(vm);
      variantTokens = (await s.complete('Once upon a time', { maxTokens: 8, greedy: true })).tokens;
      await s.dispose();
      console.error(`${model} ${tag} round ${r + 1}/${rounds}: compress ${ms.toFixed(0)} ms, make variant ${mk.toFixed(0)} ms, variant ${vm.toFixed(0)} ms`);
    }
    const run = {
      model,
      synthetic: model.startsWith('synthetic-'),
      weights: tag,
      backend: 'wasm',
      threads: 1,
      source_bytes: sourceBytes,
      variant_bytes: variantBytes,
      compress_ms: stat(compressMs),
      make_ms: stat(makeMs),
      variant_ms: stat(variantMs),
      speedup: Number((median(compressMs) / median(variantMs)).toFixed(2)),
      same_tokens: JSON.stringify(sourceTokens) === JSON.stringify(variantTokens),
    };
    console.error(JSON.stringify(run));
    runs.push(run);
  }
}
console.log(JSON.stringify({ runs, rounds, node: process.version, cpus: cpus().length, loadavg: loadavg().map((x) => Number(x.toFixed(2))) }));
