/**
 * `method: 'awq'` end to end for the engine: the fp32 prepared weights' block graphs measure
 * each linear's input on calibration text (activation-stats.ts), and each layer is scaled,
 * folded and quantized as soon as its statistics exist (models/compress/awq.ts via
 * compressLayerAwq), so only one layer's calibration rows are held at a time. The head is
 * quantized with round-to-nearest like every other method's.
 *
 * @example
 * const q4 = await compressPreparedAwq(probeSource, { linear: 'q4', group: 32, method: 'awq' }, 'wasm', tokens);
 */
import { WhittleError } from '../../core/errors.ts';
import type { AwqChoice, BlockScales } from '../../models/compress/awq.ts';
import { compressHead, compressLayerAwq } from '../../models/compress/compress-prepared.ts';
import { resolveForms, type KernelBackend } from '../../models/compress/kernel-choice.ts';
import type { PreparedLayer, PreparedWeights } from '../../models/llama/prepare.ts';
import type { WeightsSetting } from '../../models/llama/types.ts';
import { collectLinearInputStats, type ActivationStatsOptions } from './activation-stats.ts';
import type { ProbeSource } from './probe-runner.ts';

/** The compressed weights, and per layer the alpha AWQ chose for each linear (for reports). */
export interface AwqResult {
  weights: PreparedWeights;
  choices: Record<keyof BlockScales, AwqChoice>[];
}

/** `source.weights` must be fp32 (the model AWQ's statistics describe); `tokens` include BOS if the model wants one. */
export async function compressPreparedAwq(source: ProbeSource, setting: WeightsSetting, backend: KernelBackend, tokens: readonly number[], options: ActivationStatsOptions = {}): Promise<AwqResult> {
  if (setting.method !== 'awq') throw new WhittleError('INVALID_ARGUMENT', `compressPreparedAwq is for method 'awq', not '${setting.method ?? 'rtn'}'`);
  const { block, head } = resolveForms(setting, backend, source.weights.config);
  const fp32 = source.weights;
  const c = fp32.config;
  const layers: PreparedLayer[] = [];
  const choices: AwqResult['choices'] = [];
  await collectLinearInputStats(
    source,
    tokens,
    (i, stats) => {
      const r = compressLayerAwq(fp32.layers[i]!, i, c, fp32.headSize, block, stats);
      layers[i] = r.layer;
      choices[i] = r.choices;
    },
    options,
  );
  return { weights: { ...fp32, layers, head: compressHead(fp32.head, c, head) }, choices };
}
