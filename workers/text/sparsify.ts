/**
 * Wanda on the device (issue #14): the input norm ||x_k|| of every block linear, measured through
 * the compiled linear-input probe graphs (activation-stats.ts: the same calibration pass AWQ and
 * width pruning use), then the masks (models/compress/sparsity-prepared.ts).
 *
 * One pass through the *unmasked* model, every block in order (the full depth, whatever plan is
 * compiled: a sparse variant is cached once and serves every plan). Wanda's own code re-runs each
 * block after masking it so the next block sees the sparse model's activations; here, as for
 * width pruning, one pass measures them all (fewer graph runs; the paper reports the two close).
 *
 * @example
 * const masked = await sparsifyWithCalibration(probe, tokens, { pattern: '2:4' });
 */
import { sparsifyPrepared, type BlockInputNorms } from '../../models/compress/sparsity-prepared.ts';
import { normalizeSparsity, type SparsitySetting } from '../../models/compress/sparsity-select.ts';
import type { PreparedWeights } from '../../models/llama/prepare.ts';
import { collectLinearInputStats } from './activation-stats.ts';
import type { ProbeSource } from './probe-runner.ts';

/** sqrt(mean x_k^2) per input channel of each block's four linears, in layer order. */
export async function wandaInputNorms(source: ProbeSource, tokens: readonly number[], signal?: AbortSignal): Promise<BlockInputNorms[]> {
  const norms: BlockInputNorms[] = [];
  const root = (a: Float32Array) => a.map(Math.sqrt);
  // collectLinearInputStats measures through 'onnx'-attention probes on every backend (see there).
  await collectLinearInputStats(
    source,
    tokens,
    (layer, s) => {
      norms[layer] = { qkv: root(s.qkv.meanSquare), wo: root(s.wo.meanSquare), gateUp: root(s.gateUp.meanSquare), down: root(s.down.meanSquare) };
    },
    { rows: 0, ...(signal ? { signal } : {}) },
  );
  return norms;
}

/** `source.weights` (fp32) masked by `setting`: Wanda measures the calibration `tokens` first; magnitude needs none. */
export async function sparsifyWithCalibration(source: ProbeSource, tokens: readonly number[], setting: SparsitySetting, signal?: AbortSignal): Promise<PreparedWeights> {
  const s = normalizeSparsity(setting);
  if (s.method === 'magnitude') return sparsifyPrepared(source.weights, s);
  return sparsifyPrepared(source.weights, s, await wandaInputNorms(source, tokens, signal));
}
