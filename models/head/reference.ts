/**
 * Test oracle for the zero-block plan, written straight from llama2.c's run.c with its own
 * offset arithmetic (deliberately not using the checkpoint reader or the graph builder):
 * logits[t] = W_cls · rmsnorm(E[token_t]) with W_cls = E for a shared classifier.
 * Legacy llama2.c files only. Plain loops, float64 accumulation.
 */
export function referenceHeadLogits(file: ArrayBuffer, tokens: readonly number[]): Float32Array {
  const header = new Int32Array(file, 0, 7);
  const [dim, hidden, layers, heads, kvHeads, signedVocab, seqLen] = Array.from(header) as [number, number, number, number, number, number, number];
  const vocab = Math.abs(signedVocab);
  const headSize = dim / heads;
  const kvDim = (dim * kvHeads) / heads;
  const floats = new Float32Array(file, 28);
  // run.c memory_map_weights order
  const embOffset = 0;
  let p = vocab * dim; // token_embedding_table
  p += layers * dim; // rms_att_weight
  p += layers * dim * dim; // wq
  p += 2 * layers * dim * kvDim; // wk, wv
  p += layers * dim * dim; // wo
  p += layers * dim; // rms_ffn_weight
  p += 3 * layers * dim * hidden; // w1, w2, w3
  const rmsFinal = p;
  p += dim;
  p += seqLen * headSize; // freq_cis_real + freq_cis_imag (seqLen * headSize/2 each)
  const cls = signedVocab > 0 ? embOffset : p;

  const out = new Float32Array(tokens.length * vocab);
  const x = new Float64Array(dim);
  tokens.forEach((tok, t) => {
    let ss = 0;
    for (let i = 0; i < dim; i++) {
      x[i] = floats[embOffset + tok * dim + i]!;
      ss += x[i]! * x[i]!;
    }
    const scale = 1 / Math.sqrt(ss / dim + 1e-5);
    for (let i = 0; i < dim; i++) x[i] = x[i]! * scale * floats[rmsFinal + i]!;
    for (let v = 0; v < vocab; v++) {
      let acc = 0;
      for (let i = 0; i < dim; i++) acc += floats[cls + v * dim + i]! * x[i]!;
      out[t * vocab + v] = acc;
    }
  });
  return out;
}

/** Largest |a-b| / max(1, |b|) over two equally long arrays. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!));
    if (!(err <= worst)) worst = Number.isNaN(err) ? Infinity : err;
  }
  return worst;
}
