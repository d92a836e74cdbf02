/**
 * Decode speed of depth and width cuts at a model folder's shape (the synthetic SmolLM2-135M:
 * random weights in the published shape, so the scores that pick a cut mean nothing and only the
 * shapes matter). One engine at full size and one per method, each cut to `fraction` of the
 * whole model's parameters and then, for q8, compressed (cuts before compression, as the SDK
 * requires), measured by bench/interleaved-speed.ts. Used by bench/width-speed.ts and
 * bench:prune (bench/prune.ts).
 *
 * - depth: k whole blocks, k = round(fraction x params / one block's params), chosen by the
 *   influence criterion (one similarity pass on the built-in calibration text; the perplexity
 *   criterion would run a full-model pass per block for scores that mean nothing here). Which
 *   blocks go matters for speed only through how the kept ones split into graphs.
 * - flap, wanda-sp: `TextEngine.pruneWidth` with the blocks' linears cut by
 *   fraction x params / block-linear params.
 *
 * @example
 * const rows = await shapeSpeedRows({ dir, model: 'smollm2-135m', fraction: 0.2, weights: ['f32'], methods: ['depth', 'flap'], rounds: 3, tokens: 64 });
 */
import { openAsBlob, readdirSync } from 'node:fs';
import { WhittleError } from '../core/errors.ts';
import { join } from 'node:path';
import { blockParams } from '../models/compress/width-select.ts';
import { choosePrunePlan } from '../models/llama/scoring.ts';
import { headSizeOf } from '../models/llama/types.ts';
import type { OrtModule } from '../workers/ort/runtime.ts';
import { DEFAULT_CALIBRATION_TEXT } from '../workers/text/calibration.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { openTextModelFromHf, type StreamedTextModel } from '../workers/text/model.ts';
import type { WidthMethod } from '../workers/text/width-prune.ts';
import { interleavedRates, median, speedup } from './interleaved-speed.ts';

export type ShapeCut = 'depth' | WidthMethod;
export const SHAPE_CUTS: readonly ShapeCut[] = ['depth', 'flap', 'wanda-sp'];

export interface ShapeSpeedOptions {
  /** A Hugging Face folder (config.json, safetensors, tokenizer). */
  dir: string;
  /** The name rows carry. */
  model: string;
  fraction: number;
  weights: readonly ('f32' | 'q8')[];
  methods: readonly ShapeCut[];
  rounds: number;
  tokens: number;
  log?: (line: string) => void;
}

export interface ShapeSpeedRow {
  model: string;
  synthetic: true;
  weights: 'f32' | 'q8';
  method: ShapeCut;
  params_removed: number;
  full_tok_per_cpu_s: number;
  pruned_tok_per_cpu_s: number;
  decode_speedup: number;
  speedup_range: [number, number];
  /** What was cut: blocks removed, or KV heads / FFN channels kept per block. */
  kept: string;
}

async function openFolder(dir: string): Promise<StreamedTextModel> {
  const names = readdirSync(dir).filter((n) => /\.(json|safetensors)$/.test(n));
  return openTextModelFromHf(Object.fromEntries(await Promise.all(names.map(async (n) => [n, await openAsBlob(join(dir, n))] as const))));
}

const round = (x: number, digits: number) => Number(x.toFixed(digits));

export async function shapeSpeedRows(ort: OrtModule, options: ShapeSpeedOptions): Promise<ShapeSpeedRow[]> {
  const log = options.log ?? (() => {});
  const unknown = options.methods.filter((m) => !SHAPE_CUTS.includes(m));
  if (unknown.length > 0) throw new WhittleError('INVALID_ARGUMENT', `unknown cut ${unknown.join(', ')}: use ${SHAPE_CUTS.join(', ')}`);
  if (!(options.fraction > 0 && options.fraction < 1)) throw new WhittleError('INVALID_ARGUMENT', `fraction must be between 0 and 1, got ${options.fraction}`);
  if (!Number.isInteger(options.rounds) || options.rounds < 1 || !Number.isInteger(options.tokens) || options.tokens < 2) throw new WhittleError('INVALID_ARGUMENT', `rounds must be a positive integer and tokens at least 2, got ${options.rounds} / ${options.tokens}`);
  const rows: ShapeSpeedRow[] = [];
  for (const weights of options.weights) {
    const c = (await openFolder(options.dir)).config;
    const shape = { dim: c.dim, headSize: headSizeOf(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim };
    const blockLinears = c.nLayers * blockParams(shape);
    const block = blockParams(shape) + 2 * c.dim;
    const total = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.dim + c.nLayers * block;
    const engines: { name: string; engine: TextEngine; removed: number; kept: string }[] = [];
    for (const name of ['full', ...options.methods] as const) {
      const engine = await TextEngine.create(ort, 'wasm', await openFolder(options.dir));
      let removed = 0;
      let kept = '';
      if (name === 'depth') {
        const k = Math.round((options.fraction * total) / block);
        const scores = await engine.scoreBlocks(DEFAULT_CALIBRATION_TEXT, { perplexity: false });
        const choice = choosePrunePlan(scores, { remove: k, criterion: 'influence' });
        await engine.setPlan(choice.plan);
        removed = (k * block) / total;
        kept = `removed blocks ${choice.removed.join(', ')}`;
      } else if (name !== 'full') {
        const out = await engine.pruneWidth({ ratio: (options.fraction * total) / blockLinears, method: name });
        removed = (out.params.before - out.params.after) / total;
        kept = `KV heads kept ${out.width.kvHeads.map((h) => h.length).join('/')}; FFN kept ${out.width.ffn.map((f) => f.length).join('/')}`;
      }
      if (weights === 'q8') await engine.compress({ linear: 'q8' });
      log(`${weights} ${name}: compiled, ${(removed * 100).toFixed(1)}% of params removed`);
      engines.push({ name, engine, removed, kept });
    }
    const rates = await interleavedRates(engines, { rounds: options.rounds, tokens: options.tokens, log: (line) => log(`${weights} ${line}`) });
    const full = rates.get('full')!;
    for (const e of engines.slice(1)) {
      const s = speedup(full, rates.get(e.name)!);
      rows.push({
        model: options.model,
        synthetic: true,
        weights,
        method: e.name as ShapeCut,
        params_removed: round(e.removed, 4),
        full_tok_per_cpu_s: round(median(full), 2),
        pruned_tok_per_cpu_s: round(median(rates.get(e.name)!), 2),
        decode_speedup: round(s.median, 3),
        speedup_range: [round(s.range[0], 3), round(s.range[1], 3)],
        kept: e.kept,
      });
    }
    for (const e of engines) await e.engine.dispose();
  }
  return rows;
}
