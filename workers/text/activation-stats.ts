/**
 * Calibration statistics of every block's four linear inputs, measured on the compiled ONNX
 * graphs (models/llama/linear-input-probe.ts: each block's probe graph with its linear inputs as
 * extra outputs), for activation-aware quantization (models/compress/awq.ts):
 *   meanAbs [K]     mean |x_k| over every calibration position
 *   mean    [K]     mean x_k           (FLAP's bias compensation)
 *   meanSquare [K]  mean x_k^2         (Wanda-sp's input norm: ||x_k|| = sqrt(positions * meanSquare))
 *   variance [K]    mean x_k^2 - (mean x_k)^2, in float64 before rounding (FLAP's fluctuation)
 *   rows    [R, K]  R of the positions' inputs, spread evenly over the text (AWQ's error term)
 *
 * Layer-major, like block scoring (probe-runner.ts): every window through block l, then block
 * l + 1, with the host holding the residual stream in between; one block's session exists at a
 * time. Each layer's statistics go to `onLayer` as soon as they are complete, so a caller can
 * compress that layer and drop them: memory holds one layer's rows, not the model's.
 *
 * The weights measured are the ones in `source` (fp32 for AWQ: its scales are derived from the
 * unquantized model, whose function the folding preserves).
 *
 * @example
 * await collectLinearInputStats(source, tokens, (layer, stats) => { out[layer] = compressLayerAwq(...); });
 */
import { WhittleError } from '../../core/errors.ts';
import type { BlockInputStats, LinearInputStats } from '../../models/compress/awq.ts';
import { kvCacheShape } from '../../models/llama/graph.ts';
import { linearInputProbe, type BlockLinear } from '../../models/llama/linear-input-probe.ts';
import { layerWidth } from '../../models/llama/prepare.ts';
import { calibrationWindows, checkCalibrationTokens } from '../../models/llama/scoring.ts';
import { createSession } from '../ort/runtime.ts';
import { Checkpoint } from './checkpoint.ts';
import { ProbeRunner, type ProbeSource } from './probe-runner.ts';
import { StepInputs } from './runner.ts';
import type * as Ort from 'onnxruntime-web';

export interface ActivationStatsOptions {
  /** Calibration rows kept per linear for the output error (default 256, at most the positions; 0 = none). */
  rows?: number;
  /**
   * The blocks to run, in order (a depth-pruned plan's `layers`): each block's inputs are what the
   * blocks before it in this list produce. Default: every block.
   */
  layers?: readonly number[];
  /** Checked before every compile and run; rejects with WhittleError('ABORTED'). */
  signal?: AbortSignal;
}

/** One linear's statistics: AWQ's, plus the first two moments per input channel (float32 [K], over every position). */
export interface CollectedInputStats extends LinearInputStats {
  mean: Float32Array;
  meanSquare: Float32Array;
  variance: Float32Array;
}
export type CollectedBlockStats = Record<keyof BlockInputStats, CollectedInputStats>;

/** graph.ts's weight names -> awq.ts's field names. */
const FIELD: Record<BlockLinear, keyof BlockInputStats> = { qkv: 'qkv', wo: 'wo', gate_up: 'gateUp', down: 'down' };

/**
 * Runs `tokens` (BOS included if the model wants one) through every block's linear-input probe,
 * in context-sized windows, and hands each layer's statistics to `onLayer` in layer order.
 */
export async function collectLinearInputStats(
  given: ProbeSource,
  tokens: readonly number[],
  onLayer: (layer: number, stats: CollectedBlockStats) => void | Promise<void>,
  options: ActivationStatsOptions = {},
): Promise<void> {
  // The probes run the 'onnx' attention (plain ops), whatever the engine generates with: in
  // Chromium's WebGPU (SwiftShader) the probes with GroupQueryAttention measured other statistics
  // than WASM (an empty past is the suspect): Wanda's masks differed (stories260K 2:4 logits 7.3
  // apart from the Node engine's; 1e-5 with 'onnx') and AWQ's q8 logits were 3x further from
  // Node's than RTN's kernel difference (0.29 vs 0.097; 'onnx': 0.097). e2e/sparsity.spec.ts
  // holds Wanda on WebGPU to Node's logits. The probes compile their own graphs, so the
  // generation graphs keep their attention.
  const source: ProbeSource = { ...given, attention: 'onnx' };
  const c = source.weights.config;
  checkCalibrationTokens(c, tokens);
  const maxRows = options.rows ?? 256;
  if (!Number.isInteger(maxRows) || maxRows < 0) throw new WhittleError('INVALID_ARGUMENT', `rows must be a whole number >= 0, not ${maxRows}`);
  const order = options.layers ?? Array.from({ length: c.nLayers }, (_, l) => l);
  const windows = calibrationWindows(tokens, c.maxSeqLen);
  const positions = windows.reduce((n, w) => n + w.length, 0);
  const R = Math.min(maxRows, positions);
  // Position p (counted over all windows) is kept as row r when it is the first with floor(p R / positions) = r.
  const rowOf = (p: number) => {
    const r = Math.floor((p * R) / positions);
    return r !== Math.floor(((p - 1) * R) / positions) ? r : -1;
  };
  const checkpoint = new Checkpoint(options.signal);
  const inputs = new StepInputs(source.ort, source.attention, c.nHeads / c.nKvHeads);
  const hs = source.weights.headSize;
  // The residual stream entering each window's next block: embedding rows first, as probes do.
  const embedder = new ProbeRunner(source, options.signal);
  let hidden = windows.map((w) => embedder.embed(w)); // per window [S_w, dim]

  for (const layer of order) {
    await checkpoint.pass();
    const probe = linearInputProbe(source.weights, layer, source.attention);
    const K = layerWidth(c, source.weights.layers[layer]!).nKvHeads;
    const acc = probe.outputs.map((o) => ({ ...o, sumAbs: new Float64Array(o.K), sum: new Float64Array(o.K), sumSq: new Float64Array(o.K), rows: new Float32Array(R * o.K) }));
    const session = await createSession(source.ort, probe.built, source.backend);
    try {
      let p0 = 0;
      const next: Float32Array[] = [];
      for (const [wi, h] of hidden.entries()) {
        await checkpoint.pass();
        const S = windows[wi]!.length;
        const feeds = inputs.feeds(0, S);
        feeds.hidden_in = new source.ort.Tensor('float32', h, [1, S, c.dim]);
        // An empty cache: every probe run is a prefill from position 0.
        feeds[`past_key.${layer}`] = new source.ort.Tensor('float32', new Float32Array(0), kvCacheShape(source.attention, 'key', K, hs, 0));
        feeds[`past_value.${layer}`] = new source.ort.Tensor('float32', new Float32Array(0), kvCacheShape(source.attention, 'value', K, hs, 0));
        const out = await run(session, feeds, ['hidden_out', ...acc.map((a) => a.name)]);
        next.push(out.hidden_out!);
        for (const a of acc) {
          const x = out[a.name]!; // [S, K]
          for (let s = 0; s < S; s++) {
            const row = x.subarray(s * a.K, (s + 1) * a.K);
            for (let k = 0; k < a.K; k++) {
              const v = row[k]!;
              a.sumAbs[k]! += Math.abs(v);
              a.sum[k]! += v;
              a.sumSq[k]! += v * v;
            }
            const r = rowOf(p0 + s);
            if (r >= 0) a.rows.set(row, r * a.K);
          }
        }
        p0 += S;
      }
      hidden = next;
    } finally {
      await session.release();
    }
    const stats = {} as CollectedBlockStats;
    const mean = (sums: Float64Array) => Float32Array.from(sums, (v) => v / positions);
    for (const a of acc) {
      const variance = Float32Array.from(a.sumSq, (sq, k) => Math.max(0, sq / positions - (a.sum[k]! / positions) ** 2));
      stats[FIELD[a.linear]] = { meanAbs: mean(a.sumAbs), mean: mean(a.sum), meanSquare: mean(a.sumSq), variance, rows: a.rows };
    }
    await onLayer(layer, stats);
  }
}

/** One session.run fetching `names`, each as a fresh Float32Array (getData downloads on WebGPU). */
async function run(session: Ort.InferenceSession, feeds: Record<string, Ort.Tensor>, names: string[]): Promise<Record<string, Float32Array>> {
  const picked: Record<string, Ort.Tensor> = {};
  for (const name of session.inputNames) picked[name] = feeds[name]!;
  const out = await session.run(picked, names);
  const result: Record<string, Float32Array> = {};
  for (const name of names) {
    const t = out[name]!;
    result[name] = (await t.getData()) as Float32Array;
    t.dispose();
  }
  return result;
}
