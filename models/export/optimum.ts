/**
 * Exports a LLaMA model as an optimum-style decoder ONNX, the layout transformers.js loads:
 *   inputs  input_ids [b, s], attention_mask [b, past + s], position_ids [b, s] (int64),
 *           past_key_values.{i}.key / .value [b, kv_heads, past, head_dim]
 *   outputs logits [b, s, vocab], present.{i}.key / .value [b, kv_heads, past + s, head_dim]
 * The graph is built the way a PyTorch trace of Hugging Face's LlamaForCausalLM comes out:
 * separate Q/K/V/gate/up projections, RMSNorm as Pow/ReduceMean/Add/Sqrt/Div/Mul, RoPE with
 * rotate_half, KV concatenation, repeat_kv by Expand, an explicit causal + padding mask.
 * It exists so the text benchmark's peer runs the *same weights* in the form it normally gets.
 */
import { WhittleError } from '../../core/errors.ts';
import { GraphBuilder, type BuiltModel, type Value } from '../onnx/builder.ts';
import type { LlamaConfig, LlamaWeights } from '../llama/types.ts';
import { blobBytes, blockCount, quantizeBlockwise, zeroPointBytes } from '../compress/blockwise.ts';

/** W [out, in] -> W^T [in, out], for MatMul(x, W^T) as torch's Linear traces. */
function transpose(w: Float32Array, out: number, inp: number): Float32Array {
  const t = new Float32Array(w.length);
  for (let o = 0; o < out; o++) for (let i = 0; i < inp; i++) t[i * out + o] = w[o * inp + i]!;
  return t;
}

/**
 * x @ W [K, N] as onnxruntime's `quantize_dynamic` writes it: W int8 per tensor (symmetric,
 * zero point 0), x quantized to uint8 at run time.
 */
function matMulInteger(g: GraphBuilder, x: Value, w: Float32Array, K: number, N: number, name: string): Value {
  let amax = 0;
  for (const v of w) amax = Math.max(amax, Math.abs(v));
  const scale = amax > 0 ? amax / 127 : 1;
  const q = Int8Array.from(w, (v) => Math.max(-127, Math.min(127, Math.round(v / scale))));
  const [xq, xScale, xZero] = g.opN('DynamicQuantizeLinear', [x], 3);
  const wq = g.constant(`${name}.quantized`, 'int8', [K, N], q);
  const wZero = g.constant(`${name}.zero_point`, 'int8', [], Int8Array.of(0));
  const acc = g.op('MatMulInteger', [xq!, wq, xZero!, wZero]); // int32 [.., N]
  const rescale = g.op('Mul', [xScale!, g.constant(`${name}.scale`, 'float32', [], Float32Array.of(scale))]);
  return g.op('Mul', [g.op('Cast', [acc], { to: 1 }), rescale]);
}

/** Q/K rows from llama2.c's interleaved RoPE pairs (2i, 2i+1) to HF's halves (i, i + hd/2). */
function toHalfLayout(w: Float32Array, heads: number, headSize: number, inp: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = headSize / 2;
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < half; i++) {
      out.set(w.subarray((h * headSize + 2 * i) * inp, (h * headSize + 2 * i + 1) * inp), (h * headSize + i) * inp);
      out.set(w.subarray((h * headSize + 2 * i + 1) * inp, (h * headSize + 2 * i + 2) * inp), (h * headSize + i + half) * inp);
    }
  }
  return out;
}

/**
 * Weight quantization as transformers.js's conversion scripts apply it after the export (onnxruntime's
 * quantizers, every MatMul with a constant weight, the LM head included; the embedding `Gather`
 * stays fp32 here):
 * - 'q8' (`model_quantized.onnx`): `quantize_dynamic` with int8 weights per tensor, symmetric:
 *   DynamicQuantizeLinear(x) -> MatMulInteger -> Cast -> Mul by x_scale * w_scale.
 * - 'q4' (`model_q4.onnx`): MatMulNBits, 4 bits, blocks of 32, no accuracy_level (the quantizer's
 *   default). The grid here is asymmetric with zero points (models/compress/blockwise.ts) where
 *   the published files are mostly symmetric; onnxruntime's kernel does the same work for both.
 */
export type PeerQuantization = 'q8' | 'q4';

/** The file transformers.js loads for each dtype. */
export const PEER_ONNX_FILE = { f32: 'model.onnx', q8: 'model_quantized.onnx', q4: 'model_q4.onnx' } as const;

export interface OptimumExport {
  model: BuiltModel;
  /** config.json for transformers.js (model_type llama). */
  config: Record<string, unknown>;
  generationConfig: Record<string, unknown>;
}

export function exportOptimumDecoder(c: LlamaConfig, w: LlamaWeights, quantize?: PeerQuantization): OptimumExport {
  // This export mirrors a plain LlamaForCausalLM trace; refuse what it would silently drop.
  if (c.qkvBias || c.ropeScaling || (c.headDim !== undefined && c.headDim !== c.dim / c.nHeads)) {
    throw new WhittleError('UNSUPPORTED', 'the optimum-style export covers plain Llama configs only (no q/k/v biases, rope_scaling or a head_dim other than hidden_size / heads)');
  }
  const hd = c.dim / c.nHeads;
  const kvDim = c.nKvHeads * hd;
  const g = new GraphBuilder('llama_optimum');
  const ids = g.input('input_ids', 'int64', ['batch_size', 'sequence_length']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch_size', 'total_sequence_length']);
  const positionIds = g.input('position_ids', 'int64', ['batch_size', 'sequence_length']);
  const past = Array.from({ length: c.nLayers }, (_, l) => ({
    key: g.input(`past_key_values.${l}.key`, 'float32', ['batch_size', c.nKvHeads, 'past_sequence_length', hd]),
    value: g.input(`past_key_values.${l}.value`, 'float32', ['batch_size', c.nKvHeads, 'past_sequence_length', hd]),
  }));

  const rmsNorm = (x: Value, weight: Float32Array, name: string) => {
    const variance = g.op('ReduceMean', [g.op('Pow', [x, g.scalar(2)]), g.ints([-1])], { keepdims: 1 });
    const inv = g.op('Div', [g.scalar(1), g.op('Sqrt', [g.op('Add', [variance, g.scalar(c.normEps)])])]);
    return g.op('Mul', [g.constant(name, 'float32', [c.dim], weight), g.op('Mul', [x, inv])]);
  };
  const linear = (x: Value, weight: Float32Array, out: number, inp: number, name: string): Value => {
    const wt = transpose(weight, out, inp); // [inp, out]
    if (quantize === 'q8') return matMulInteger(g, x, wt, inp, out, name);
    if (quantize === 'q4') {
      const q = quantizeBlockwise(wt, inp, out, 4, 32);
      const nBlocks = blockCount(inp, 32);
      const b = g.constant(name, 'uint8', [out, nBlocks, blobBytes(32, 4)], q.b);
      const scales = g.constant(`${name}.scales`, 'float32', [out * nBlocks], q.scales);
      const zp = g.constant(`${name}.zero_points`, 'uint8', [out * zeroPointBytes(nBlocks, 4)], q.zeroPoints);
      return g.op('MatMulNBits', [x, b, scales, zp], { K: inp, N: out, bits: 4, block_size: 32 }, { domain: 'com.microsoft' });
    }
    return g.op('MatMul', [x, g.constant(name, 'float32', [inp, out], wt)]);
  };

  // Rotary tables from position_ids: cos/sin [b, 1, s, hd].
  const invFreq = Float32Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(c.ropeTheta, (2 * i) / hd));
  const freqs = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positionIds], { to: 1 }), g.ints([-1])]), g.constant('inv_freq', 'float32', [hd / 2], invFreq)]);
  const emb = g.op('Concat', [freqs, freqs], { axis: -1 });
  const cos = g.op('Unsqueeze', [g.op('Cos', [emb]), g.ints([1])]);
  const sin = g.op('Unsqueeze', [g.op('Sin', [emb]), g.ints([1])]);
  const rotateHalf = (x: Value) => {
    const x1 = g.op('Slice', [x, g.ints([0]), g.ints([hd / 2]), g.ints([-1])]);
    const x2 = g.op('Slice', [x, g.ints([hd / 2]), g.ints([hd]), g.ints([-1])]);
    return g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
  };
  const rope = (x: Value) => g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotateHalf(x), sin])]);

  // Mask [b, 1, s, T]: key j visible to query i iff j <= past + i and attention_mask[j] == 1.
  const scalarAt = (shapeOf: Value, index: number) => g.op('Gather', [g.op('Shape', [shapeOf]), g.constant(`dim_${g.nodeCount}`, 'int64', [], BigInt64Array.of(BigInt(index)))], { axis: 0 });
  const seq = scalarAt(ids, 1);
  const total = scalarAt(attentionMask, 1);
  const zero = g.constant('zero_i64', 'int64', [], BigInt64Array.of(0n));
  const one = g.constant('one_i64', 'int64', [], BigInt64Array.of(1n));
  const keyIdx = g.op('Unsqueeze', [g.op('Range', [zero, total, one]), g.ints([0])]); // [1, T]
  const queryIdx = g.op('Unsqueeze', [g.op('Add', [g.op('Range', [zero, seq, one]), g.op('Sub', [total, seq])]), g.ints([1])]); // [s, 1]
  const causal = g.op('Unsqueeze', [g.op('LessOrEqual', [keyIdx, queryIdx]), g.ints([0, 1])]); // [1, 1, s, T]
  const padding = g.op('Unsqueeze', [g.op('Cast', [attentionMask], { to: 9 }), g.ints([1, 2])]); // [b, 1, 1, T]
  const bias = g.op('Where', [g.op('And', [causal, padding]), g.scalar(0), g.scalar(-3.4028234663852886e38)]);

  let x = g.op('Gather', [g.constant('embed_tokens', 'float32', [c.vocabSize, c.dim], w.tokenEmbedding), ids], { axis: 0 });
  const nRep = c.nHeads / c.nKvHeads;
  w.layers.forEach((layer, l) => {
    const h = rmsNorm(x, layer.attnNorm, `l${l}.input_layernorm`);
    const wq = c.ropeLayout === 'interleaved' ? toHalfLayout(layer.wq, c.nHeads, hd, c.dim) : layer.wq;
    const wk = c.ropeLayout === 'interleaved' ? toHalfLayout(layer.wk, c.nKvHeads, hd, c.dim) : layer.wk;
    const heads = (v: Value, n: number) => g.op('Transpose', [g.op('Reshape', [v, g.ints([0, 0, n, hd])])], { perm: [0, 2, 1, 3] });
    const q = rope(heads(linear(h, wq, c.dim, c.dim, `l${l}.q_proj`), c.nHeads));
    const k = rope(heads(linear(h, wk, kvDim, c.dim, `l${l}.k_proj`), c.nKvHeads));
    const v = heads(linear(h, layer.wv, kvDim, c.dim, `l${l}.v_proj`), c.nKvHeads);
    const keys = g.op('Concat', [past[l]!.key, k], { axis: 2 }, { outputName: `present.${l}.key` });
    const values = g.op('Concat', [past[l]!.value, v], { axis: 2 }, { outputName: `present.${l}.value` });
    g.output(keys, 'float32', ['batch_size', c.nKvHeads, 'total_sequence_length', hd]);
    g.output(values, 'float32', ['batch_size', c.nKvHeads, 'total_sequence_length', hd]);
    const repeat = (t: Value) =>
      nRep === 1 ? t : g.op('Reshape', [g.op('Expand', [g.op('Unsqueeze', [t, g.ints([2])]), g.ints([1, 1, nRep, 1, 1])]), g.ints([0, c.nHeads, -1, hd])]);
    const scores = g.op('Div', [g.op('MatMul', [q, g.op('Transpose', [repeat(keys)], { perm: [0, 1, 3, 2] })]), g.scalar(Math.sqrt(hd))]);
    const probs = g.op('Softmax', [g.op('Add', [scores, bias])], { axis: -1 });
    const attn = g.op('Reshape', [g.op('Transpose', [g.op('MatMul', [probs, repeat(values)])], { perm: [0, 2, 1, 3] }), g.ints([0, 0, c.dim])]);
    x = g.op('Add', [x, linear(attn, layer.wo, c.dim, c.dim, `l${l}.o_proj`)]);
    const h2 = rmsNorm(x, layer.ffnNorm, `l${l}.post_attention_layernorm`);
    const gate = linear(h2, layer.w1, c.hiddenDim, c.dim, `l${l}.gate_proj`);
    const up = linear(h2, layer.w3, c.hiddenDim, c.dim, `l${l}.up_proj`);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    x = g.op('Add', [x, linear(act, layer.w2, c.dim, c.hiddenDim, `l${l}.down_proj`)]);
  });
  const logits = linear(rmsNorm(x, w.finalNorm, 'norm'), w.lmHead, c.vocabSize, c.dim, 'lm_head');
  g.output(logits, 'float32', ['batch_size', 'sequence_length', c.vocabSize], 'logits');
  return {
    model: g.build({ opset: 18, embedWeights: true, producer: 'whittle-optimum-export' }),
    config: {
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      hidden_size: c.dim,
      intermediate_size: c.hiddenDim,
      num_hidden_layers: c.nLayers,
      num_attention_heads: c.nHeads,
      num_key_value_heads: c.nKvHeads,
      head_dim: hd,
      vocab_size: c.vocabSize,
      max_position_embeddings: c.maxSeqLen,
      rope_theta: c.ropeTheta,
      rms_norm_eps: c.normEps,
      tie_word_embeddings: c.tiedEmbeddings,
      bos_token_id: c.bosTokenId,
      eos_token_id: c.eosTokenId,
      torch_dtype: 'float32',
    },
    generationConfig: { bos_token_id: c.bosTokenId, eos_token_id: c.eosTokenId, do_sample: false },
  };
}
