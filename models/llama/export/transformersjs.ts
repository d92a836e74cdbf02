/**
 * Exports a (possibly pruned) LLaMA as a folder transformers.js loads with
 * `AutoModelForCausalLM.from_pretrained(folder, { dtype: 'fp32' })`: the optimum layout
 * (config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx)
 * with the optimum I/O (see `SegmentIo` in ../graph.ts). A pruned plan becomes a smaller model:
 * `num_hidden_layers` is the number of kept blocks. No early exit (transformers.js has no notion of it).
 *
 * Returns file name -> bytes; writing them is the caller's business (no Node imports here).
 *
 * @example
 * const files = exportForTransformersJs(config, weights, tokenizerJson, { layers: [0, 1, 3, 4] });
 * for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
 */
import { WhittleError } from '../../../core/errors.ts';
import { buildSegment } from '../graph.ts';
import { validatePlan } from '../plan.ts';
import { prepareWeights } from '../prepare.ts';
import { fullPlan, headSizeOf, type LlamaConfig, type LlamaPlan, type LlamaWeights } from '../types.ts';
import { inlineExternalData } from './inline-weights.ts';

const json = (v: unknown) => new TextEncoder().encode(JSON.stringify(v, null, 2));

export function exportForTransformersJs(config: LlamaConfig, weights: LlamaWeights, tokenizerJson: object, plan: LlamaPlan = fullPlan(config)): Record<string, Uint8Array> {
  validatePlan(plan, config.nLayers);
  if (plan.exit !== undefined && plan.exit !== plan.layers.length) {
    throw new WhittleError('UNSUPPORTED', 'transformers.js exports have no early exit; export the exit as a pruned plan (layers.slice(0, exit)) instead');
  }
  const prepared = prepareWeights(config, weights);
  const graph = buildSegment(prepared, { layers: plan.layers, embed: true, head: 'final', hiddenOut: false }, 'onnx', 'optimum');
  const hf = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: config.dim,
    intermediate_size: config.hiddenDim,
    num_hidden_layers: plan.layers.length,
    num_attention_heads: config.nHeads,
    num_key_value_heads: config.nKvHeads,
    // RoPE scaling and Q/K/V biases are baked into the graph; transformers.js reads only the cache shape from here.
    head_dim: headSizeOf(config),
    vocab_size: config.vocabSize,
    max_position_embeddings: config.maxSeqLen,
    rope_theta: config.ropeTheta,
    rms_norm_eps: config.normEps,
    // The graph holds its own head; what matters to transformers.js is the cache shape above.
    tie_word_embeddings: config.tiedEmbeddings,
    hidden_act: 'silu',
    bos_token_id: config.bosTokenId,
    eos_token_id: config.eosTokenId,
    torch_dtype: 'float32',
    whittle: { sourceLayers: plan.layers },
  };
  return {
    'config.json': json(hf),
    'generation_config.json': json({ bos_token_id: config.bosTokenId, eos_token_id: config.eosTokenId, max_length: config.maxSeqLen }),
    'tokenizer.json': json(tokenizerJson),
    'tokenizer_config.json': json({
      tokenizer_class: 'LlamaTokenizer',
      bos_token: '<s>',
      eos_token: '</s>',
      unk_token: '<unk>',
      add_bos_token: true,
      add_eos_token: false,
      clean_up_tokenization_spaces: false,
      model_max_length: config.maxSeqLen,
    }),
    'onnx/model.onnx': inlineExternalData(graph.built),
  };
}
