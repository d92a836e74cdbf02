/**
 * The tensors a transformers checkpoint of a LLaMA-family config.json holds, in the order of the
 * model's state_dict (the order `save_pretrained` shards in), with their shapes and the init the
 * synthetic generator gives them. Read from config.json's own keys, not through Whittle's
 * importer, so a generated folder tests the importer rather than mirroring it.
 *
 * Tied models (`tie_word_embeddings`) have no `lm_head.weight` (safetensors drops shared tensors);
 * Qwen2 has q/k/v biases, nobody here has an o_proj bias.
 *
 * @example
 * const tensors = checkpointLayout(JSON.parse(configText), 0.02);
 * // [{ name: 'model.embed_tokens.weight', shape: [49152, 576], init: { kind: 'normal', std: 0.02 } }, ...]
 */
import type { Init } from './values.ts';

export interface TensorPlan {
  name: string;
  shape: number[];
  init: Init;
}

/** Elements of a tensor. */
export const elementCount = (t: Pick<TensorPlan, 'shape'>) => t.shape.reduce((a, b) => a * b, 1);

export function checkpointLayout(config: Record<string, unknown>, std: number): TensorPlan[] {
  const int = (key: string, fallback?: number): number => {
    const v = config[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new Error(`config.json: ${key} must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const arch = (config.architectures as string[] | undefined)?.[0];
  const dim = int('hidden_size');
  const heads = int('num_attention_heads');
  const kvHeads = int('num_key_value_heads', heads);
  const headDim = typeof config.head_dim === 'number' ? config.head_dim : dim / heads;
  const hidden = int('intermediate_size');
  const vocab = int('vocab_size');
  const qkvBias = arch === 'Qwen2ForCausalLM' || config.attention_bias === true;
  const normal: Init = { kind: 'normal', std };
  const ones: Init = { kind: 'ones' };

  const out: TensorPlan[] = [{ name: 'model.embed_tokens.weight', shape: [vocab, dim], init: normal }];
  for (let i = 0; i < int('num_hidden_layers'); i++) {
    const p = `model.layers.${i}.`;
    out.push({ name: `${p}self_attn.q_proj.weight`, shape: [heads * headDim, dim], init: normal });
    if (qkvBias) out.push({ name: `${p}self_attn.q_proj.bias`, shape: [heads * headDim], init: normal });
    out.push({ name: `${p}self_attn.k_proj.weight`, shape: [kvHeads * headDim, dim], init: normal });
    if (qkvBias) out.push({ name: `${p}self_attn.k_proj.bias`, shape: [kvHeads * headDim], init: normal });
    out.push({ name: `${p}self_attn.v_proj.weight`, shape: [kvHeads * headDim, dim], init: normal });
    if (qkvBias) out.push({ name: `${p}self_attn.v_proj.bias`, shape: [kvHeads * headDim], init: normal });
    out.push({ name: `${p}self_attn.o_proj.weight`, shape: [dim, heads * headDim], init: normal });
    out.push({ name: `${p}mlp.gate_proj.weight`, shape: [hidden, dim], init: normal });
    out.push({ name: `${p}mlp.up_proj.weight`, shape: [hidden, dim], init: normal });
    out.push({ name: `${p}mlp.down_proj.weight`, shape: [dim, hidden], init: normal });
    out.push({ name: `${p}input_layernorm.weight`, shape: [dim], init: ones });
    out.push({ name: `${p}post_attention_layernorm.weight`, shape: [dim], init: ones });
  }
  out.push({ name: 'model.norm.weight', shape: [dim], init: ones });
  if (config.tie_word_embeddings !== true) out.push({ name: 'lm_head.weight', shape: [vocab, dim], init: normal });
  return out;
}
