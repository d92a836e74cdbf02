/**
 * The zero-block plan of a LLaMA model: token embedding -> final RMSNorm -> LM head.
 * It is the smallest graph that exercises real weights end to end (store -> worker -> ORT),
 * which is why the spine uses it; the full text engine builds segments with blocks in between.
 *
 * Inputs: `input_ids` int32 [n]. Output: `logits` float32 [n, vocab].
 */
import { GraphBuilder, type BuiltModel } from '../onnx/builder.ts';
import type { LlamaConfig, LlamaWeights } from '../llama/types.ts';

export function buildHeadGraph(config: LlamaConfig, weights: LlamaWeights): { built: BuiltModel; nodeCount: number } {
  const { dim, vocabSize, normEps } = config;
  const g = new GraphBuilder('embed_norm_head');
  const ids = g.input('input_ids', 'int32', ['n']);
  const embedding = g.constant('embed_tokens', 'float32', [vocabSize, dim], weights.tokenEmbedding); // [vocab, dim]
  const head = config.tiedEmbeddings
    ? embedding // tied: one initializer feeds both Gather and Gemm
    : g.constant('lm_head', 'float32', [vocabSize, dim], weights.lmHead); // [vocab, dim]
  const norm = g.constant('final_norm', 'float32', [dim], weights.finalNorm); // [dim]

  const x = g.op('Gather', [embedding, ids], { axis: 0 }); // [n, dim]
  // RMSNorm: x / sqrt(mean(x^2) + eps) * w
  const meanSquare = g.op('ReduceMean', [g.op('Mul', [x, x]), g.ints([-1])], { keepdims: 1 }); // [n, 1]
  const invRms = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSquare, g.scalar(normEps)])])]);
  const normed = g.op('Mul', [g.op('Mul', [x, invRms]), norm]); // [n, dim]
  const logits = g.op('Gemm', [normed, head], { transB: 1 }); // [n, vocab]
  g.output(logits, 'float32', ['n', vocabSize], 'logits');
  return { built: g.build(), nodeCount: g.nodeCount };
}
