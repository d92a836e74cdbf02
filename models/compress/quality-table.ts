/**
 * Held-out perplexity of the project's three trained models under every weight compression
 * method: fp32, q8 (int8 per channel; 8-bit groups of 32), q4 (groups of 32 / 64 / 128), each
 * with round-to-nearest, HQQ (hqq.ts) and AWQ-lite (awq.ts) where the method applies (HQQ has no
 * zero point to refine in the symmetric int8 form).
 *
 *   npx tsx models/compress/quality-table.ts [model ...] [--kernel <substring>]   (default: all three, every config)
 *
 * prints a markdown table and one JSON line `{ "quality": [{ model, weights, group, method,
 * perplexity, perplexity_ratio, kl_to_f32 }] }` (group null for fp32 and int8 per channel;
 * kl_to_f32 = mean KL(fp32 || compressed) per held-out token, which separates methods where the
 * perplexity differences are within the small text's noise).
 *
 * How: each compressed model is compiled as one full-depth graph (buildSegment, 'onnx'
 * attention) on onnxruntime-web WASM, quantized linears in the kernel named in the table
 * (MatMulNBits with fp32 activations for the grouped forms, DynamicQuantizeMatMul for int8 per
 * channel), head 8-bit round-to-nearest in every compressed row (the method applies to the block
 * linears only). Text: the built-in calibration prose (workers/text/calibration.ts) is split in
 * two halves by tokens; AWQ calibrates on the first half only, and perplexity is measured on the
 * second half plus the 12 held-out story openings (models/llama/testing/held-out-prompts.ts), each
 * window from BOS. So no method is scored on text it saw.
 *
 * @example
 * const rows = await qualityTable(['stories-layerskip']);
 */
/* eslint-disable no-restricted-imports -- a measurement script: it must run the graphs it measures, and AWQ's statistics come from the compiled graphs (workers/) */
import type * as Ort from 'onnxruntime-web';
import { createSession, loadOrt, type OrtModule } from '../../workers/ort/runtime.ts';
import { compressPreparedAwq } from '../../workers/text/awq-compress.ts';
import { DEFAULT_CALIBRATION_TEXT } from '../../workers/text/calibration.ts';
import { TextTokenizer } from '../../workers/text/tokenizer.ts';
/* eslint-enable no-restricted-imports */
import { readHfModel } from '../import/hf/model.ts';
import { readLlama2cCheckpoint } from '../import/llama2c/checkpoint.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../import/llama2c/tokenizer.ts';
import { buildSegment } from '../llama/graph.ts';
import { prepareWeights, type PreparedWeights } from '../llama/prepare.ts';
import { HELD_OUT_PROMPTS } from '../llama/testing/held-out-prompts.ts';
import { fullPlan, type LlamaConfig, type LlamaWeights, type WeightsSetting } from '../llama/types.ts';
import { readLocalModelFile } from '../local.ts';
import { compressPrepared } from './compress-prepared.ts';

const MASKED = -3.0e38;

/** A compiled full-depth graph over prepared weights, returning every position's logits. */
export class FullModel {
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly weights: PreparedWeights,
  ) {}

  static async compile(ort: OrtModule, w: PreparedWeights): Promise<FullModel> {
    const graph = buildSegment(w, { layers: fullPlan(w.config).layers, embed: true, head: 'final', hiddenOut: false, allLogits: true }, 'onnx');
    return new FullModel(ort, await createSession(ort, graph.built, 'wasm'), w);
  }

  /** logits [S, vocab] of `tokens` from position 0, no KV cache (the weights are what is measured). */
  async logits(tokens: readonly number[]): Promise<Float32Array> {
    const c = this.weights.config;
    const S = tokens.length;
    const mask = new Float32Array(S * S);
    for (let r = 0; r < S; r++) mask.fill(MASKED, r * S + r + 1, (r + 1) * S);
    const feeds: Record<string, Ort.Tensor> = {
      input_ids: new this.ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, S]),
      position: new this.ort.Tensor('int64', BigInt64Array.of(0n), [1]),
      attention_mask: new this.ort.Tensor('float32', mask, [S, S]),
    };
    for (let l = 0; l < c.nLayers; l++) {
      feeds[`past_key.${l}`] = new this.ort.Tensor('float32', new Float32Array(0), [1, c.nKvHeads, 0, this.weights.headSize]);
      feeds[`past_value.${l}`] = new this.ort.Tensor('float32', new Float32Array(0), [1, c.nKvHeads, 0, this.weights.headSize]);
    }
    const out = await this.session.run(feeds, ['logits']);
    return out.logits!.data as Float32Array;
  }

  /** Sum of -log p(next token) over a window, and the number of predictions. */
  async nll(window: readonly number[]): Promise<{ nll: number; count: number }> {
    const V = this.weights.config.vocabSize;
    const logits = await this.logits(window);
    let nll = 0;
    for (let s = 0; s + 1 < window.length; s++) {
      const row = logits.subarray(s * V, (s + 1) * V);
      let max = -Infinity;
      for (const v of row) max = Math.max(max, v);
      let sum = 0;
      for (const v of row) sum += Math.exp(v - max);
      nll -= row[window[s + 1]!]! - max - Math.log(sum);
    }
    return { nll, count: window.length - 1 };
  }

  /**
   * Perplexity over `windows`, and the mean KL(reference || this) of the next-token
   * distributions when `reference` (fp32's logits per window) is given.
   */
  async evaluate(windows: readonly (readonly number[])[], reference?: readonly Float32Array[]): Promise<{ perplexity: number; kl: number; logits: Float32Array[] }> {
    const V = this.weights.config.vocabSize;
    let nll = 0;
    let kl = 0;
    let count = 0;
    const all: Float32Array[] = [];
    for (const [wi, w] of windows.entries()) {
      const logits = await this.logits(w);
      all.push(logits);
      for (let s = 0; s + 1 < w.length; s++) {
        const lp = logSoftmax(logits.subarray(s * V, (s + 1) * V));
        nll -= lp[w[s + 1]!]!;
        if (reference) {
          const ref = logSoftmax(reference[wi]!.subarray(s * V, (s + 1) * V));
          for (let v = 0; v < V; v++) kl += Math.exp(ref[v]!) * (ref[v]! - lp[v]!);
        }
        count++;
      }
    }
    return { perplexity: Math.exp(nll / count), kl: reference ? kl / count : 0, logits: all };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}

function logSoftmax(row: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of row) max = Math.max(max, v);
  let sum = 0;
  for (const v of row) sum += Math.exp(v - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(row, (v) => v - lse);
}

export const QUALITY_MODELS = ['stories260K', 'stories-layerskip', 'stories-baseline'] as const;

export interface QualityModel {
  id: string;
  config: LlamaConfig;
  weights: LlamaWeights;
  tokenizer: TextTokenizer;
}

export function loadQualityModel(id: string): QualityModel {
  if (id === 'stories260K') {
    const { config, weights } = readLlama2cCheckpoint(readLocalModelFile(id, 'stories260K.bin'));
    const tokenizer = TextTokenizer.fromJson(llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile(id, 'tok512.bin'), config.vocabSize)));
    return { id, config, weights, tokenizer };
  }
  const { config, weights } = readHfModel(Object.fromEntries(['config.json', 'model.safetensors'].map((n) => [n, readLocalModelFile(id, n)])));
  const tokenizer = TextTokenizer.fromJson(JSON.parse(new TextDecoder().decode(readLocalModelFile(id, 'tokenizer.json'))) as unknown);
  return { id, config, weights, tokenizer };
}

/** The text split: AWQ's calibration tokens, and the held-out windows every method is scored on. */
export function qualityText(m: QualityModel): { calibration: number[]; heldOut: number[][] } {
  const c = m.config;
  const prose = m.tokenizer.encode(DEFAULT_CALIBRATION_TEXT);
  const half = Math.floor(prose.length / 2);
  const calibration = [c.bosTokenId, ...prose.slice(0, half)];
  const heldOut = HELD_OUT_PROMPTS.map((p) => [c.bosTokenId, ...m.tokenizer.encode(p)]);
  const rest = prose.slice(half);
  for (let i = 0; i < rest.length; i += c.maxSeqLen - 1) heldOut.push([c.bosTokenId, ...rest.slice(i, i + c.maxSeqLen - 1)]);
  return { calibration, heldOut };
}

export interface QualityConfig {
  /** Column 'weights' of the JSON. */
  weights: 'f32' | 'q8' | 'q4';
  /** Group size; null for fp32 and int8 per channel. */
  group: 32 | 64 | 128 | null;
  method: 'rtn' | 'hqq' | 'awq';
  kernel: string;
  setting: WeightsSetting | null;
}

const grouped = (linear: 'q8' | 'q4', group: 32 | 64 | 128, method: 'rtn' | 'hqq' | 'awq'): QualityConfig => ({
  weights: linear,
  group,
  method,
  kernel: 'MatMulNBits',
  setting: { linear, group, kernel: 'nbits', head: 'q8', method },
});

export const QUALITY_CONFIGS: QualityConfig[] = [
  { weights: 'f32', group: null, method: 'rtn', kernel: 'MatMul', setting: null },
  ...(['rtn', 'awq'] as const).map((method): QualityConfig => ({ weights: 'q8', group: null, method, kernel: 'DynamicQuantizeMatMul (int8 per channel)', setting: { linear: 'q8', kernel: 'int8', head: 'q8', method } })),
  ...(['rtn', 'hqq', 'awq'] as const).map((m) => grouped('q8', 32, m)),
  ...([32, 64, 128] as const).flatMap((g) => (['rtn', 'hqq', 'awq'] as const).map((m) => grouped('q4', g, m))),
  // WASM's q4 default: the same 4-bit grid, its values requantized to int8 per channel.
  ...(['rtn', 'hqq', 'awq'] as const).map((method): QualityConfig => ({ weights: 'q4', group: 32, method, kernel: 'DynamicQuantizeMatMul (the 4-bit grid as int8)', setting: { linear: 'q4', group: 32, kernel: 'int8', head: 'q8', method } })),
];

export interface QualityRow {
  model: string;
  weights: QualityConfig['weights'];
  group: number | null;
  method: QualityConfig['method'];
  kernel: string;
  perplexity: number;
  perplexity_ratio: number;
  /**
   * Mean KL(fp32 || this) of the next-token distributions over the held-out positions, in nats:
   * the quantization's own damage, without the text's sampling noise that perplexity carries.
   */
  kl_to_f32: number;
}

/** Every config of QUALITY_CONFIGS on every model in `models`, fp32 first per model. */
export async function qualityTable(models: readonly string[] = QUALITY_MODELS, configs: readonly QualityConfig[] = QUALITY_CONFIGS, ort?: OrtModule): Promise<QualityRow[]> {
  const rt = ort ?? (await loadOrt({ backend: 'wasm', numThreads: 1 }));
  const rows: QualityRow[] = [];
  for (const id of models) {
    const m = loadQualityModel(id);
    const { calibration, heldOut } = qualityText(m);
    const fp32 = prepareWeights(m.config, m.weights);
    let base = NaN;
    let reference: Float32Array[] | undefined;
    for (const cfg of configs) {
      let prepared = fp32;
      if (cfg.setting && cfg.method === 'awq') {
        prepared = (await compressPreparedAwq({ ort: rt, backend: 'wasm', weights: fp32, attention: 'onnx' }, cfg.setting, 'wasm', calibration)).weights;
      } else if (cfg.setting) {
        prepared = compressPrepared(fp32, cfg.setting, 'wasm');
      }
      const model = await FullModel.compile(rt, prepared);
      const r = await model.evaluate(heldOut, reference);
      await model.release();
      if (!cfg.setting) {
        base = r.perplexity;
        reference = r.logits;
      }
      rows.push({ model: id, weights: cfg.weights, group: cfg.group, method: cfg.method, kernel: cfg.kernel, perplexity: r.perplexity, perplexity_ratio: r.perplexity / base, kl_to_f32: r.kl });
    }
  }
  return rows;
}

export function markdownTable(rows: readonly QualityRow[]): string {
  return [
    '| model | weights | group | method | kernel | held-out ppl | vs f32 | KL to f32 (nats/token) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const pct = 100 * (r.perplexity_ratio - 1);
      const vs = r.weights === 'f32' ? '—' : `${pct >= 0 ? '+' : '−'}${Math.abs(pct).toFixed(2)}%`;
      return `| ${r.model} | ${r.weights} | ${r.group ?? '—'} | ${r.weights === 'f32' ? '—' : r.method} | ${r.kernel} | ${r.perplexity.toFixed(4)} | ${vs} | ${r.weights === 'f32' ? '—' : r.kl_to_f32.toFixed(5)} |`;
    }),
  ].join('\n');
}

if (process.argv[1]?.endsWith('quality-table.ts')) {
  // --kernel <substring>: only the configs whose kernel names it (fp32 always runs: the baseline).
  const args = process.argv.slice(2);
  const k = args.indexOf('--kernel');
  const kernel = k >= 0 ? args.splice(k, 2)[1] : undefined;
  const configs = kernel === undefined ? QUALITY_CONFIGS : QUALITY_CONFIGS.filter((c) => c.setting === null || c.kernel.includes(kernel));
  const rows = await qualityTable(args.length > 0 ? args : QUALITY_MODELS, configs);
  console.log(markdownTable(rows));
  console.log(JSON.stringify({ quality: rows.map(({ model, weights, group, method, perplexity, perplexity_ratio, kl_to_f32 }) => ({ model, weights, group, method, perplexity, perplexity_ratio, kl_to_f32 })) }));
}
