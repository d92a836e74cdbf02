/**
 * Reader for llama2.c checkpoints (github.com/karpathy/llama2.c):
 * - legacy: 7 int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len),
 *   negative vocab_size meaning an untied classifier, fp32 weights in run.c order;
 * - version 1: magic "ak42", version, the same 7 params, a shared-classifier byte, padded to 256 bytes,
 *   fp32 weights in export.py's `legacy=False` order.
 * Weights are views on the input buffer (no copy). Every size is checked against the header so a
 * truncated or lying file is a BAD_MODEL error, never an out-of-bounds read.
 */
import { WhittleError } from '../../../core/errors.ts';
import type { LlamaConfig, LlamaLayerWeights, LlamaWeights } from '../../llama/types.ts';

const MAGIC_V1 = 0x616b3432; // "ak42" read as little-endian int32
const V1_HEADER_BYTES = 256;

export interface Llama2cCheckpoint {
  config: LlamaConfig;
  weights: LlamaWeights;
  format: 'legacy' | 'v1';
}

export function readLlama2cCheckpoint(buffer: ArrayBuffer, name = 'checkpoint'): Llama2cCheckpoint {
  if (buffer.byteLength < 28) {
    throw new WhittleError('BAD_MODEL', `${name}: ${buffer.byteLength} bytes is too short for a llama2.c header`, { name });
  }
  const view = new DataView(buffer);
  const isV1 = view.getInt32(0, true) === MAGIC_V1;
  let offset: number;
  let p: number[];
  let shared: boolean;
  if (isV1) {
    const version = view.getInt32(4, true);
    if (version !== 1) {
      throw new WhittleError('UNSUPPORTED', `${name}: llama2.c checkpoint version ${version} is not supported (only legacy and version 1 fp32)`, { name, version });
    }
    p = Array.from({ length: 7 }, (_, i) => view.getInt32(8 + i * 4, true));
    shared = view.getUint8(36) !== 0;
    offset = V1_HEADER_BYTES;
  } else {
    p = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
    shared = p[5]! > 0;
    p[5] = Math.abs(p[5]!);
    offset = 28;
  }
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, maxSeqLen] = p as [number, number, number, number, number, number, number];
  const sane =
    dim > 0 && hiddenDim > 0 && nLayers > 0 && nHeads > 0 && nKvHeads > 0 && vocabSize > 0 && maxSeqLen > 0 &&
    dim % nHeads === 0 && nHeads % nKvHeads === 0 && dim <= 1 << 16 && nLayers <= 1024 && vocabSize <= 1 << 20;
  if (!sane) {
    throw new WhittleError('BAD_MODEL', `${name}: implausible llama2.c header [${p.join(', ')}]`, { name });
  }
  const config: LlamaConfig = {
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize,
    maxSeqLen,
    ropeTheta: 10000,
    normEps: 1e-5,
    tiedEmbeddings: shared,
    // llama2.c rotates adjacent pairs (2i, 2i+1) of each head.
    ropeLayout: 'interleaved',
    bosTokenId: 1,
    eosTokenId: 2,
  };
  const headSize = dim / nHeads;
  const kvDim = nKvHeads * headSize;

  const floatsLeft = () => (buffer.byteLength - offset) / 4;
  const take = (count: number, what: string): Float32Array => {
    if (count > floatsLeft()) {
      throw new WhittleError(
        'BAD_MODEL',
        `${name}: truncated checkpoint: ${what} needs ${count * 4} bytes at offset ${offset}, file has ${buffer.byteLength}`,
        { name, offset, needed: count * 4, size: buffer.byteLength },
      );
    }
    if (offset % 4 !== 0) throw new WhittleError('BAD_MODEL', `${name}: misaligned weights`, { name });
    const out = new Float32Array(buffer, offset, count);
    offset += count * 4;
    return out;
  };
  const perLayer = (count: number, what: string): Float32Array[] => {
    const all = take(count * nLayers, what);
    return Array.from({ length: nLayers }, (_, l) => all.subarray(l * count, (l + 1) * count));
  };

  let tokenEmbedding: Float32Array;
  let attnNorm: Float32Array[];
  let ffnNorm: Float32Array[];
  let finalNorm: Float32Array;
  let wq: Float32Array[], wk: Float32Array[], wv: Float32Array[], wo: Float32Array[];
  let w1: Float32Array[], w2: Float32Array[], w3: Float32Array[];
  if (isV1) {
    attnNorm = perLayer(dim, 'attention norms');
    ffnNorm = perLayer(dim, 'ffn norms');
    finalNorm = take(dim, 'final norm');
    tokenEmbedding = take(vocabSize * dim, 'token embedding');
    wq = perLayer(dim * dim, 'wq');
    wk = perLayer(kvDim * dim, 'wk');
    wv = perLayer(kvDim * dim, 'wv');
    wo = perLayer(dim * dim, 'wo');
    w1 = perLayer(hiddenDim * dim, 'w1');
    w2 = perLayer(dim * hiddenDim, 'w2');
    w3 = perLayer(hiddenDim * dim, 'w3');
  } else {
    tokenEmbedding = take(vocabSize * dim, 'token embedding');
    attnNorm = perLayer(dim, 'attention norms');
    wq = perLayer(dim * dim, 'wq');
    wk = perLayer(kvDim * dim, 'wk');
    wv = perLayer(kvDim * dim, 'wv');
    wo = perLayer(dim * dim, 'wo');
    ffnNorm = perLayer(dim, 'ffn norms');
    w1 = perLayer(hiddenDim * dim, 'w1');
    w2 = perLayer(dim * hiddenDim, 'w2');
    w3 = perLayer(hiddenDim * dim, 'w3');
    finalNorm = take(dim, 'final norm');
    take(maxSeqLen * headSize, 'legacy RoPE tables'); // freq_cis_real + freq_cis_imag, unused
  }
  const lmHead = shared ? tokenEmbedding : take(vocabSize * dim, 'classifier');
  if (isV1 ? offset !== buffer.byteLength : offset !== buffer.byteLength) {
    throw new WhittleError(
      'BAD_MODEL',
      `${name}: ${buffer.byteLength - offset} unexpected trailing bytes; the header does not describe this file`,
      { name, trailing: buffer.byteLength - offset },
    );
  }
  const layers: LlamaLayerWeights[] = Array.from({ length: nLayers }, (_, l) => ({
    attnNorm: attnNorm[l]!,
    wq: wq[l]!,
    wk: wk[l]!,
    wv: wv[l]!,
    wo: wo[l]!,
    ffnNorm: ffnNorm[l]!,
    w1: w1[l]!,
    w2: w2[l]!,
    w3: w3[l]!,
  }));
  return { config, weights: { tokenEmbedding, layers, finalNorm, lmHead }, format: isV1 ? 'v1' : 'legacy' };
}
