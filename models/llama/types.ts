/** The shape of a LLaMA-family model, whatever file it came from. */
export interface LlamaConfig {
  dim: number;
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  vocabSize: number;
  maxSeqLen: number;
  ropeTheta: number;
  normEps: number;
  tiedEmbeddings: boolean;
  /**
   * How q/k head dims pair up for RoPE: 'interleaved' = (2i, 2i+1) as in Meta's and llama2.c's code;
   * 'half' = (i, i + headSize/2) as in Hugging Face's `rotate_half`.
   */
  ropeLayout: 'interleaved' | 'half';
  bosTokenId: number;
  eosTokenId: number;
}

/** Row-major weights; linear layers are [out, in] like torch.nn.Linear and llama2.c. */
export interface LlamaLayerWeights {
  attnNorm: Float32Array; // [dim]
  wq: Float32Array; // [nHeads*headSize, dim]
  wk: Float32Array; // [nKvHeads*headSize, dim]
  wv: Float32Array; // [nKvHeads*headSize, dim]
  wo: Float32Array; // [dim, nHeads*headSize]
  ffnNorm: Float32Array; // [dim]
  w1: Float32Array; // gate [hidden, dim]
  w2: Float32Array; // down [dim, hidden]
  w3: Float32Array; // up   [hidden, dim]
}

export interface LlamaWeights {
  tokenEmbedding: Float32Array; // [vocab, dim]
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // [dim]
  lmHead: Float32Array; // [vocab, dim]; the same array as tokenEmbedding when tied
}

/**
 * What to run: `layers` are the kept blocks, in order (depth pruning); `exit`, when set, is how
 * many of those kept blocks run before drafts leave through the shared final norm + LM head
 * (LayerSkip early exit): exit after `layers.slice(0, exit)`.
 *
 * @example
 * const plan: LlamaPlan = { layers: [0, 1, 3, 4], exit: 2 }; // skip block 2; drafts exit after blocks 0,1
 */
export interface LlamaPlan {
  layers: number[];
  exit?: number;
}

/** The plan that runs every block once, in order, with no early exit. */
export function fullPlan(config: LlamaConfig): LlamaPlan {
  return { layers: Array.from({ length: config.nLayers }, (_, i) => i) };
}
