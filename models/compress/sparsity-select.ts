/**
 * Which weights a sparse linear keeps (issue #14): Wanda's score |W[k, n]| * ||x_k|| (Sun et
 * al. 2023, "A Simple and Effective Pruning Approach for LLMs"), compared within each output
 * (column n of MatMul's B [K, N], i.e. row n of the torch [out, in] weight), in two patterns:
 *   'unstructured'  the floor(ratio * K) lowest scores of each output are zeroed;
 *   '2:4'           in every group of 4 consecutive inputs k of each output, the 2 lowest are
 *                   zeroed (NVIDIA's semi-structured pattern; ratio exactly 0.5).
 * Ties go to the lower input index first (Wanda's code sorts with stable=True), so a mask is a
 * pure function of the weights and norms.
 *
 * 'magnitude' is the same with every ||x_k|| = 1: the data-free baseline Wanda is measured
 * against. The ranking within one output only compares inputs of that output, so any positive
 * scale of the norms (sqrt of the mean square, or of the sum) gives the same mask.
 *
 * @example
 * const keep = sparsityMask(w, K, N, inputNorms, { pattern: '2:4' }); // Uint8Array [K, N], 1 = kept
 * const sparse = applyMask(w, keep);
 */
import { WhittleError } from '../../core/errors.ts';

/**
 * '2:4': 2 of every 4 consecutive inputs of an output zeroed; 'unstructured': any, by ratio.
 *
 * @example
 * const pattern: SparsityPattern = '2:4';
 */
export type SparsityPattern = '2:4' | 'unstructured';
/**
 * 'wanda': |W| times the input's calibration norm; 'magnitude': |W| alone (no calibration).
 *
 * @example
 * const method: SparsityMethod = 'wanda';
 */
export type SparsityMethod = 'wanda' | 'magnitude';

/**
 * Sparsity of the block linears (embedding, norms and head stay dense).
 *
 * @example
 * await lm.compress({ linear: 'q4', sparsity: { pattern: '2:4' } satisfies SparsitySetting });
 */
export interface SparsitySetting {
  pattern: SparsityPattern;
  /** Fraction of each output's weights zeroed: 'unstructured' only, in (0, 1), default 0.5; '2:4' is 0.5 by definition. */
  ratio?: number;
  /** 'wanda' (default): |W| times the input's calibration norm; 'magnitude': |W| alone (no calibration). */
  method?: SparsityMethod;
}

/** Throws INVALID_ARGUMENT for a setting that names no sparsity this file makes. */
export function validateSparsity(s: SparsitySetting): void {
  const bad = (msg: string) => new WhittleError('INVALID_ARGUMENT', `sparsity: ${msg}`, { sparsity: JSON.stringify(s) });
  if (typeof s !== 'object' || s === null) throw bad('must be an object { pattern, ratio?, method? }');
  if (s.pattern !== '2:4' && s.pattern !== 'unstructured') throw bad(`pattern must be '2:4' or 'unstructured', not ${JSON.stringify(s.pattern)}`);
  if (s.method !== undefined && s.method !== 'wanda' && s.method !== 'magnitude') throw bad(`method must be 'wanda' or 'magnitude', not ${JSON.stringify(s.method)}`);
  if (s.pattern === '2:4' && s.ratio !== undefined && s.ratio !== 0.5) throw bad(`'2:4' zeroes exactly half the weights; ratio ${s.ratio} is not 0.5`);
  if (s.ratio !== undefined && !(typeof s.ratio === 'number' && Number.isFinite(s.ratio) && s.ratio > 0 && s.ratio < 1)) throw bad(`ratio must be a fraction in (0, 1), not ${JSON.stringify(s.ratio)}`);
}

/** The setting with its defaults filled in (what a variant records). */
export function normalizeSparsity(s: SparsitySetting): Required<SparsitySetting> {
  validateSparsity(s);
  return { pattern: s.pattern, ratio: s.ratio ?? 0.5, method: s.method ?? 'wanda' };
}

/**
 * The keep-mask of W [K, N] (row-major, MatMul's B): Uint8Array [K, N], 1 = kept. `norms` [K] is
 * ||x_k|| for 'wanda' (null = all ones, i.e. magnitude). '2:4' needs K divisible by 4.
 */
export function sparsityMask(w: Float32Array, K: number, N: number, norms: Float32Array | null, setting: SparsitySetting): Uint8Array {
  const s = normalizeSparsity(setting);
  if (!Number.isInteger(K) || !Number.isInteger(N) || K < 1 || N < 1 || w.length !== K * N) throw new WhittleError('INVALID_ARGUMENT', `weight has ${w.length} values, not K * N = ${K} * ${N}`);
  if (norms && norms.length !== K) throw new WhittleError('INVALID_ARGUMENT', `input norms have ${norms.length} values for K = ${K} inputs`);
  if (s.pattern === '2:4' && K % 4 !== 0) throw new WhittleError('UNSUPPORTED', `2:4 sparsity groups inputs by 4; this weight has K = ${K} inputs`, { K });
  const keep = new Uint8Array(K * N).fill(1);
  const score = new Float64Array(K); // one output's scores
  const order = new Int32Array(K);
  const prune = Math.floor(s.ratio * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) score[k] = Math.abs(w[k * N + n]!) * (norms ? norms[k]! : 1);
    if (s.pattern === '2:4') {
      for (let g = 0; g < K; g += 4) {
        // The two lowest of four, lower index first on ties: drop a, then b.
        let a = g;
        for (let k = g + 1; k < g + 4; k++) if (score[k]! < score[a]!) a = k;
        let b = -1;
        for (let k = g; k < g + 4; k++) if (k !== a && (b < 0 || score[k]! < score[b]!)) b = k;
        keep[a * N + n] = 0;
        keep[b * N + n] = 0;
      }
    } else {
      for (let k = 0; k < K; k++) order[k] = k;
      // Stable by construction: equal scores compare by index.
      order.sort((x, y) => score[x]! - score[y]! || x - y);
      for (let i = 0; i < prune; i++) keep[order[i]! * N + n] = 0;
    }
  }
  return keep;
}

/** W with the weights `keep` marks 0 set to +0 (a copy; W is not changed). */
export function applyMask(w: Float32Array, keep: Uint8Array): Float32Array {
  if (keep.length !== w.length) throw new WhittleError('INVALID_ARGUMENT', `mask has ${keep.length} entries for ${w.length} weights`);
  const out = new Float32Array(w.length);
  for (let i = 0; i < w.length; i++) out[i] = keep[i] ? w[i]! : 0;
  return out;
}
