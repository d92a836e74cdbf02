/**
 * Prepared fp32 weights -> the same with every block linear masked (sparsity-select.ts): qkv,
 * wo, gate_up and down of each layer, each output compared within itself, so the fused q|k|v
 * and gate|up columns are masked exactly as the separate projections would be (Wanda ranks
 * within an output row; the fused columns share their input). The embedding, norms and head stay
 * dense, as in Wanda (the head is one layer whose error every token pays).
 *
 * Norms per layer come from calibration (workers/text/sparsify.ts: sqrt of each input channel's
 * mean square through the compiled probe graphs); 'magnitude' takes none.
 *
 * @example
 * const sparse = sparsifyPrepared(prepared, { pattern: '2:4' }, layerNorms);
 */
import { WhittleError } from '../../core/errors.ts';
import { layerWidth, type PreparedLayer, type PreparedWeights } from '../llama/prepare.ts';
import { applyMask, normalizeSparsity, sparsityMask, type SparsitySetting } from './sparsity-select.ts';

/** ||x_k|| per input channel of a block's four linears (any common positive scale per linear). */
export interface BlockInputNorms {
  qkv: Float32Array; // [dim]
  wo: Float32Array; // [nHeads * headSize] (the layer's own after width pruning)
  gateUp: Float32Array; // [dim]
  down: Float32Array; // [hidden]
}

/** The four linears of one fp32 layer masked; `norms` null for 'magnitude'. */
export function sparsifyLayer(l: PreparedLayer, i: number, p: Pick<PreparedWeights, 'config' | 'headSize'>, setting: SparsitySetting, norms: BlockInputNorms | null): PreparedLayer {
  const c = p.config;
  const { nHeads, nKvHeads, hidden } = layerWidth(c, l);
  const hs = p.headSize;
  const qkvCols = (nHeads + 2 * nKvHeads) * hs;
  const one = (name: string, w: PreparedLayer['qkv'], K: number, N: number, x: Float32Array | undefined): Float32Array => {
    if (!(w instanceof Float32Array)) throw new WhittleError('INVALID_ARGUMENT', `sparsity masks fp32 weights; layers.${i}.${name} is already quantized (sparsify before compressing)`, { tensor: `layers.${i}.${name}` });
    return applyMask(w, sparsityMask(w, K, N, x ?? null, setting));
  };
  return {
    ...l,
    qkv: one('qkv', l.qkv, c.dim, qkvCols, norms?.qkv),
    wo: one('wo', l.wo, nHeads * hs, c.dim, norms?.wo),
    gateUp: one('gate_up', l.gateUp, c.dim, 2 * hidden, norms?.gateUp),
    down: one('down', l.down, hidden, c.dim, norms?.down),
  };
}

/**
 * The sparsity a load can apply while it prepares the weights (no graphs exist yet to measure
 * activations): 'magnitude' only; 'wanda' is INVALID_ARGUMENT pointing at TextEngine.compress.
 */
export function loadTimeSparsity(setting: SparsitySetting): Required<SparsitySetting> {
  const s = normalizeSparsity(setting);
  if (s.method === 'wanda') {
    throw new WhittleError('INVALID_ARGUMENT', "sparsity method 'wanda' needs the model's activations: use TextEngine.compress / lm.compress after loading, or method 'magnitude' at load");
  }
  return s;
}

/** Every layer masked. 'wanda' needs `norms` (one entry per layer); 'magnitude' refuses them (so no caller believes data was used when it was not). */
export function sparsifyPrepared(p: PreparedWeights, setting: SparsitySetting, norms?: readonly BlockInputNorms[]): PreparedWeights {
  const s = normalizeSparsity(setting);
  if (s.method === 'wanda' && norms?.length !== p.layers.length) {
    throw new WhittleError('INVALID_ARGUMENT', `sparsity method 'wanda' needs input norms for each of the ${p.layers.length} layers (workers/text/sparsify.ts), got ${norms?.length ?? 'none'}`);
  }
  if (s.method === 'magnitude' && norms !== undefined) throw new WhittleError('INVALID_ARGUMENT', "sparsity method 'magnitude' uses no calibration norms");
  return { ...p, layers: p.layers.map((l, i) => sparsifyLayer(l, i, p, s, s.method === 'wanda' ? norms![i]! : null)) };
}
