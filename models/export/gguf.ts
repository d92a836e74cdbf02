/**
 * A Whittle text model (LlamaConfig + LlamaWeights, as the llama2.c and Hugging Face importers
 * read them) + its tokenizer -> a GGUF v3 file that llama.cpp (and so wllama) loads as
 * architecture `llama`, with weights in F32, Q8_0 or Q4_0.
 *
 * What llama.cpp's `llama` architecture expects, and what this does about it:
 * - Tensor names and shapes as convert_hf_to_gguf.py writes them: token_embd, blk.N.{attn_norm,
 *   attn_q, attn_k, attn_v, attn_output, ffn_norm, ffn_gate, ffn_down, ffn_up}, output_norm,
 *   output; ne is [in, out] for a torch [out, in] matrix, so the bytes are the same row-major rows.
 * - RoPE on adjacent pairs (2i, 2i+1) of each head (rope type NORM, Meta's layout). llama2.c
 *   weights already are; Hugging Face checkpoints ('half', `rotate_half`) get the inverse of HF's
 *   permutation on the Q and K rows (and Q/K biases), which is what convert_hf_to_gguf.py does.
 * - Tied embeddings: `output.weight` is omitted and llama.cpp uses token_embd for the head.
 * - rope_scaling: 'linear' as llama.rope.scaling.{type,factor}; 'llama3' as the `rope_freqs`
 *   tensor of per-pair divisors, as convert_hf_to_gguf.py writes for Llama 3.1+.
 * - Quantization: 2-D weights whose row width is a multiple of 32 are stored in the requested type;
 *   narrower rows (stories260K's ffn_down, width 172) and the norms stay F32. With Q4_0 the head
 *   (output.weight, or token_embd when tied) is Q8_0: llama.cpp's own quantizer also keeps the head
 *   above 4 bits (it uses Q6_K, which this exporter does not write).
 *
 * @example
 * const { config, weights } = readLlama2cCheckpoint(bin);
 * const gguf = exportGguf(config, weights, { kind: 'llama2c', tokenizer: readLlama2cTokenizer(tok, config.vocabSize) }, { type: 'Q8_0' });
 */
import { WhittleError } from '../../core/errors.ts';
import { checkWeightShapes } from '../llama/prepare.ts';
import { headSizeOf, type LlamaConfig, type LlamaWeights } from '../llama/types.ts';
import { QK, quantizeQ4_0, quantizeQ8_0 } from './gguf-quant.ts';
import { tokenizerKvs, type GgufTokenizerSource } from './gguf-tokenizer.ts';
import { GGML_TYPE, writeGguf, type GgmlType, type GgufKv, type GgufTensor } from './gguf-writer.ts';

export type GgufWeightType = 'F32' | 'Q8_0' | 'Q4_0';

export interface GgufExportOptions {
  type: GgufWeightType;
  /** general.name (default 'whittle-export'). */
  name?: string;
}

/** llama.cpp's `enum llama_ftype` for the file as a whole. */
const FILE_TYPE: Record<GgufWeightType, number> = { F32: 0, Q4_0: 2, Q8_0: 7 };

/** Little-endian bytes of a float32 array (a copy when the view is not 4-byte aligned). */
function f32Bytes(x: Float32Array): Uint8Array {
  if (x.byteOffset % 4 === 0) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  return new Uint8Array(Float32Array.from(x).buffer);
}

/** Q/K rows of 'half' heads (i, i + hs/2) -> interleaved (2i, 2i+1); `cols` values per row (1 for a bias). */
export function halfToInterleavedRows(w: Float32Array, heads: number, hs: number, cols: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = hs / 2;
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < hs; j++) {
      const src = j % 2 === 0 ? j / 2 : half + (j - 1) / 2;
      out.set(w.subarray((h * hs + src) * cols, (h * hs + src + 1) * cols), (h * hs + j) * cols);
    }
  }
  return out;
}

/** llama.cpp's rope_freqs for Llama 3.1+ scaling: the divisor of each pair's base frequency (convert_hf_to_gguf.py). */
function llama3RopeFactors(c: LlamaConfig, hs: number): Float32Array {
  const s = c.ropeScaling;
  if (s?.type !== 'llama3') throw new WhittleError('INTERNAL', 'llama3RopeFactors without llama3 scaling');
  const lowWavelen = s.originalMaxPositionEmbeddings / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositionEmbeddings / s.highFreqFactor;
  const out = new Float32Array(hs / 2);
  for (let i = 0; i < hs / 2; i++) {
    const freq = 1 / Math.pow(c.ropeTheta, (2 * i) / hs);
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = s.factor;
    else {
      const smooth = (s.originalMaxPositionEmbeddings / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / s.factor + smooth);
    }
  }
  return out;
}

/** The model's hyperparameters as `llama.*` keys (llama.cpp's LLM_KV names for the llama arch). */
function hparamKvs(c: LlamaConfig, hs: number): GgufKv[] {
  const u32 = (key: string, value: number): GgufKv => ({ key: `llama.${key}`, value: { type: 'u32', value } });
  const f32 = (key: string, value: number): GgufKv => ({ key: `llama.${key}`, value: { type: 'f32', value } });
  const kvs: GgufKv[] = [
    u32('context_length', c.maxSeqLen),
    u32('embedding_length', c.dim),
    u32('block_count', c.nLayers),
    u32('feed_forward_length', c.hiddenDim),
    u32('attention.head_count', c.nHeads),
    u32('attention.head_count_kv', c.nKvHeads),
    u32('rope.dimension_count', hs),
    f32('rope.freq_base', c.ropeTheta),
    f32('attention.layer_norm_rms_epsilon', c.normEps),
    u32('vocab_size', c.vocabSize),
  ];
  // llama.cpp derives the head size as embedding_length / head_count unless told otherwise.
  if (hs * c.nHeads !== c.dim) kvs.push(u32('attention.key_length', hs), u32('attention.value_length', hs));
  if (c.ropeScaling?.type === 'linear') {
    kvs.push(
      { key: 'llama.rope.scaling.type', value: { type: 'string', value: 'linear' } },
      f32('rope.scaling.factor', c.ropeScaling.factor),
    );
  }
  return kvs;
}

/**
 * The GGUF file's bytes. Throws UNSUPPORTED for what llama.cpp's llama architecture would compute
 * differently (a sliding window shorter than the context), INVALID_ARGUMENT for an unknown type,
 * BAD_MODEL for weights that do not match the config.
 */
export function exportGguf(
  config: LlamaConfig,
  weights: LlamaWeights,
  tokenizer: GgufTokenizerSource,
  options: GgufExportOptions,
): Uint8Array {
  if (!(options.type in FILE_TYPE))
    throw new WhittleError('INVALID_ARGUMENT', `GGUF weight type ${JSON.stringify(options.type)}; expected F32, Q8_0 or Q4_0`);
  if (config.slidingWindow !== undefined && config.slidingWindow < config.maxSeqLen) {
    throw new WhittleError(
      'UNSUPPORTED',
      `a sliding window of ${config.slidingWindow} < context ${config.maxSeqLen} is not written to GGUF (llama arch has none)`,
    );
  }
  checkWeightShapes(config, weights);
  const hs = headSizeOf(config);
  const { dim, nHeads, nKvHeads, hiddenDim, vocabSize } = config;
  const half = config.ropeLayout === 'half';
  const qType: GgmlType = options.type === 'Q8_0' ? GGML_TYPE.Q8_0 : options.type === 'Q4_0' ? GGML_TYPE.Q4_0 : GGML_TYPE.F32;
  const headType: GgmlType = qType === GGML_TYPE.Q4_0 ? GGML_TYPE.Q8_0 : qType;

  const tensors: GgufTensor[] = [];
  const vector = (name: string, x: Float32Array) => tensors.push({ name, ne: [x.length], type: GGML_TYPE.F32, data: f32Bytes(x) });
  /** A torch [rows, cols] matrix as ne [cols, rows], quantized when its rows split into whole blocks. */
  const matrix = (name: string, x: Float32Array, rows: number, cols: number, type: GgmlType = qType) => {
    const t = cols % QK === 0 ? type : GGML_TYPE.F32;
    const data = t === GGML_TYPE.Q8_0 ? quantizeQ8_0(x) : t === GGML_TYPE.Q4_0 ? quantizeQ4_0(x) : f32Bytes(x);
    tensors.push({ name, ne: [cols, rows], type: t, data });
  };

  matrix('token_embd.weight', weights.tokenEmbedding, vocabSize, dim, config.tiedEmbeddings ? headType : qType);
  if (config.ropeScaling?.type === 'llama3') vector('rope_freqs.weight', llama3RopeFactors(config, hs));
  weights.layers.forEach((l, i) => {
    const p = `blk.${i}.`;
    const rope = (w: Float32Array, heads: number, cols: number) => (half ? halfToInterleavedRows(w, heads, hs, cols) : w);
    vector(`${p}attn_norm.weight`, l.attnNorm);
    matrix(`${p}attn_q.weight`, rope(l.wq, nHeads, dim), nHeads * hs, dim);
    matrix(`${p}attn_k.weight`, rope(l.wk, nKvHeads, dim), nKvHeads * hs, dim);
    matrix(`${p}attn_v.weight`, l.wv, nKvHeads * hs, dim);
    if (l.bq && l.bk && l.bv) {
      vector(`${p}attn_q.bias`, rope(l.bq, nHeads, 1));
      vector(`${p}attn_k.bias`, rope(l.bk, nKvHeads, 1));
      vector(`${p}attn_v.bias`, l.bv);
    }
    matrix(`${p}attn_output.weight`, l.wo, dim, nHeads * hs);
    vector(`${p}ffn_norm.weight`, l.ffnNorm);
    matrix(`${p}ffn_gate.weight`, l.w1, hiddenDim, dim);
    matrix(`${p}ffn_down.weight`, l.w2, dim, hiddenDim);
    matrix(`${p}ffn_up.weight`, l.w3, hiddenDim, dim);
  });
  vector('output_norm.weight', weights.finalNorm);
  if (!config.tiedEmbeddings) matrix('output.weight', weights.lmHead, vocabSize, dim, headType);

  const kvs: GgufKv[] = [
    { key: 'general.architecture', value: { type: 'string', value: 'llama' } },
    { key: 'general.name', value: { type: 'string', value: options.name ?? 'whittle-export' } },
    { key: 'general.file_type', value: { type: 'u32', value: FILE_TYPE[options.type] } },
    { key: 'general.quantization_version', value: { type: 'u32', value: 2 } },
    ...hparamKvs(config, hs),
    ...tokenizerKvs(tokenizer, { vocabSize, bosTokenId: config.bosTokenId, eosTokenId: config.eosTokenId }),
  ];
  return writeGguf(kvs, tensors);
}
