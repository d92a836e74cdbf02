/**
 * One LLaMA segment as an ONNX graph: [embedding] -> N blocks -> [norm + LM head].
 *
 * Shapes (batch is always 1; S = new tokens this step, P = cached positions, T = P + S):
 *   input_ids      int64   [1, S]              (segments with the embedding)
 *   hidden_in      float32 [1, S, dim]         (segments without it)
 *   position       int64   [1]                 first position of this step (RoPE offset)
 *   position_ids   int64   [1, S]              instead of `position` in the dropout variant
 *   rope_cos/sin   float32 [S, headSize / 2]   instead of either, with SegmentOptions.ropeIn: the run's RoPE rows
 *   logit_rows     int64   [R]                 dropout variant: the rows gathered for the head; the first
 *                                              head_split[0] give `logits` [1, head_split[0], vocab], the
 *                                              rest are the run's marked context rows (see below)
 *   attention_mask float32 [G*S, T]            additive; row s*G+g is query s ('plain' attention only)
 *   seqlens_k      int32   [1] = T - 1, total_seq_len int32 [] = T   ('gqa' attention only)
 *   past_key.L / past_value.L, present_key.L / present_value.L: see `kvCacheShape`
 *   logits         float32 [1, 1, vocab]       last position only (prefill needs no others);
 *                                              [1, S, vocab] with `segment.allLogits`
 *   hidden_out     float32 [1, S, dim]         residual stream after the segment's last block
 *
 * Node budget per block ('plain'): 1 SkipSimplifiedLayerNormalization (residual add + norm fused),
 * QKV MatMul (+ 1 bias Add for Qwen2) + Split, 2 RotaryEmbedding, attention in 16 plain nodes,
 * O MatMul, 1 more SkipSimplifiedLayerNormalization, gate|up MatMul + Split + SiLU (Sigmoid, Mul)
 * + Mul + down MatMul. 'gqa' replaces the 16 attention nodes by one com.microsoft GroupQueryAttention.
 * Head size is `w.headSize` (an explicit HF `head_dim` may differ from dim / heads); any
 * `rope_scaling` lives in the cos/sin tables (rope.ts), so it costs no node.
 * A width-pruned layer (prepare.ts `layerWidth`) uses its own head count and FFN width, and adds
 * FLAP's compensation biases after O and down (1 Add each) when it has them.
 */
import { WhittleError } from '../../core/errors.ts';
import { emitLinear, linearInitializers, linearOp } from '../compress/linear.ts';
import { GraphBuilder, float, type BuiltModel, type Dim, type Value } from '../onnx/builder.ts';
import type { Segment } from './plan.ts';
import { checkSupported, layerWidth, type PreparedWeights } from './prepare.ts';

/**
 * 'plain': opset-21 ONNX ops (MatMul/Softmax/Concat), any head size, explicit mask input.
 * 'gqa': com.microsoft GroupQueryAttention (one node; onnxruntime's CPU kernel needs headSize % 8 == 0).
 * 'onnx': the opset-23 ONNX `Attention` op (one node, any head size, explicit mask); the graph is
 *   stamped opset 23, which onnxruntime's CPU/WASM kernels implement.
 *
 * @example
 * const lm = await w.text('stories260K', { attention: 'gqa' satisfies AttentionKind });
 */
export type AttentionKind = 'plain' | 'gqa' | 'onnx';

export interface SegmentGraph {
  built: BuiltModel;
  nodeCount: number;
  segment: Segment;
  attention: AttentionKind;
}

/**
 * The KV cache tensor shape of one layer for `length` positions.
 * 'plain' keeps K transposed ([1, K, hs, T]) so scores are a plain MatMul with no Transpose per
 * step; V is [1, K, T, hs]. 'gqa' uses onnxruntime's BNSH layout [1, K, T, hs] for both.
 */
export function kvCacheShape(kind: AttentionKind, which: 'key' | 'value', nKvHeads: number, headSize: number, length: number): number[] {
  if (kind === 'plain' && which === 'key') return [1, nKvHeads, headSize, length];
  return [1, nKvHeads, length, headSize];
}

/** Shape of the `attention_mask` input for S new tokens over T positions, or null when the kind takes none. */
export function attentionMaskShape(kind: AttentionKind, groups: number, S: number, T: number): [number, number] | null {
  if (kind === 'plain') return [S * groups, T];
  if (kind === 'onnx') return [S, T];
  return null;
}

/** Whether onnxruntime's GroupQueryAttention kernel takes this head size. */
export function gqaSupported(headSize: number): boolean {
  return headSize % 8 === 0;
}

/**
 * 'runner': the I/O above, for workers/text/runner.ts.
 * 'optimum': the interface Hugging Face optimum exports and transformers.js feeds (full-plan,
 *   'onnx' attention only): input_ids / attention_mask (int64 [B, T], 1 = attend) / position_ids
 *   [B, S], past_key_values.i.key|value -> logits [B, S, vocab], present.i.key|value, where i
 *   counts kept layers. The causal + padding mask is built in the graph.
 */
export type SegmentIo = 'runner' | 'optimum';

export interface SegmentOptions {
  /**
   * A tied fp32 head reads the embedding table [vocab, dim] itself through
   * `com.microsoft.FusedMatMul(transB = 1)` instead of the transposed copy [dim, vocab] in
   * `w.head`, so a session holds the vocab x dim matrix once (SmolLM2-135M: 113 MB less), at
   * 1.00-1.06x the decode step time of the MatMul (models/llama/README.md): a memory option,
   * off by default. Only where that kernel is known to exist: onnxruntime's CPU/WASM EP. Ignored
   * for untied or compressed heads.
   */
  headFromEmbedding?: boolean;
  /**
   * Dropout decoding's variant (workers/text/dropout-decode.ts): `position_ids` int64 [1, S]
   * replaces `position` (so S rows can share one position: the ensemble members are S copies of
   * one token, each under its own attention mask), and the head reads the rows named by
   * `logit_rows` int64 [R] instead of the last one. Only for attention kinds with a mask input
   * ('plain', 'onnx'); graphs without it are unchanged.
   *
   * The variant also reduces the context uncertainty in the graph, so that O(n) numbers and not
   * n x vocab logits leave the runtime (workers/text/dropout-uncertainty.ts). Extra inputs:
   *   score       bool []          whether this run scores (else the head reads the R = L rows
   *                                alone and the outputs below are one-element placeholders)
   *   score_sizes int64 [4]        [head_rows, L, N, k]: how many of the gathered rows the head
   *                                reads (the logit rows, then this run's marked rows when it
   *                                scores them), L logit rows, N scored rows (head_rows - L own + Q
   *                                fed), k of the top-k ids
   *   scored_in   float [1, Q, dim] final-normed marked rows of earlier runs, scored here too
   *   mass_in     float [Vm]       Σ_i P_i of marked rows scored elsewhere ([1] zero when none)
   *   scored_weights float [1, 1, N + 1] 1 per scored row, 0 for the padding row (see below)
   * and outputs, over the N scored rows (this run's own first, then scored_in's):
   *   final_normed   [1, R, dim]  every gathered row after the final norm (fed back as scored_in)
   *   scored_plogp   [1, N + 1, 1, 1] Σ_v P(v) log P(v) = -H(P)
   *   scored_mass    [1, 1, vocab]    Σ over the N rows of P  (before mass_in)
   *   scored_cross   [1, N + 1, 1]    Σ_v P(v) log S(v), S = scored_mass + mass_in
   *   scored_top_ids [1, N + 1, k]    int64, most probable first, ties to the lower id (TopK)
   * where row N is padding (see emitScoredHead).
   * The head is the same initializer as the logits' (one MatMul over both row sets): no copy.
   */
  dropout?: boolean;
  /**
   * The embedding segment takes the rows themselves, `inputs_embeds` float [1, S, dim], instead
   * of `input_ids` and a Gather on the table: the host looks tokens up (runner.ts), so a split
   * plan whose tied head reads the table holds it in one session only.
   */
  embeddingsIn?: boolean;
  /**
   * The run's RoPE rows are inputs, `rope_cos` / `rope_sin` float [S, headSize / 2] (the rows of
   * its S positions, in order), instead of the [maxSeqLen, headSize / 2] tables as initializers:
   * every session holds its own copy of an initializer (33.5 MB at Llama-3.2-1B's 131072
   * positions), so a plan split into many sessions feeds the rows (runner.ts). `position` /
   * `position_ids` are then not inputs: row s is position s of the run.
   */
  ropeIn?: boolean;
}

export function buildSegment(w: PreparedWeights, segment: Segment, attention: AttentionKind = 'plain', io: SegmentIo = 'runner', options: SegmentOptions = {}): SegmentGraph {
  const c = w.config;
  checkSupported(c);
  const optimum = io === 'optimum';
  if (optimum && (attention !== 'onnx' || !segment.embed || segment.head !== 'final')) {
    throw new WhittleError('UNSUPPORTED', "the optimum interface is built for one whole-plan segment with 'onnx' attention");
  }
  const dropout = options.dropout === true;
  if (dropout && (optimum || attention === 'gqa')) {
    throw new WhittleError('UNSUPPORTED', "the dropout variant needs the runner interface and an attention mask ('plain' or 'onnx')");
  }
  const B: Dim = optimum ? 'batch_size' : 1;
  const hs = w.headSize;
  // Query heads per KV head: width pruning removes whole KV groups, so G is the same in every layer.
  const G = c.nHeads / c.nKvHeads;
  const g = new GraphBuilder(`llama_${segment.layers.join('_')}${segment.head ? `_${segment.head}` : ''}`);

  // Residual stream entering the first block.
  let resid: Value;
  // One initializer however many nodes read the table (the Gather and a tied head).
  let table: Value | null = null;
  const embeddingTable = (): Value => (table ??= g.constant('embedding', 'float32', [c.vocabSize, c.dim], w.embedding));
  if (segment.embed && options.embeddingsIn === true && !optimum) {
    resid = g.input('inputs_embeds', 'float32', [1, 'S', c.dim]);
  } else if (segment.embed) {
    const ids = g.input('input_ids', 'int64', [B, 'S']);
    resid = g.op('Gather', [embeddingTable(), ids], { axis: 0 }); // [1, S, dim]
  } else {
    resid = g.input('hidden_in', 'float32', [1, 'S', c.dim]);
  }
  const ropeIn = options.ropeIn === true && !optimum;
  // With fed rows, RotaryEmbedding reads row s for the run's position s: a start of 0.
  const position = ropeIn ? g.constant('rope_start', 'int64', [1], BigInt64Array.of(0n)) : optimum || dropout ? g.input('position_ids', 'int64', [B, 'S']) : g.input('position', 'int64', [1]);
  const mask = optimum ? optimumMask(g) : attention === 'gqa' ? null : g.input('attention_mask', 'float32', [attention === 'plain' ? 'GS' : 'S', 'T']);
  const seqlens = attention === 'gqa' ? g.input('seqlens_k', 'int32', [1]) : null;
  const total = attention === 'gqa' ? g.input('total_seq_len', 'int32', []) : null;
  const cos = ropeIn ? g.input('rope_cos', 'float32', ['S', hs / 2]) : g.constant('rope_cos', 'float32', [c.maxSeqLen, hs / 2], w.ropeCos);
  const sin = ropeIn ? g.input('rope_sin', 'float32', ['S', hs / 2]) : g.constant('rope_sin', 'float32', [c.maxSeqLen, hs / 2], w.ropeSin);
  const eps = float(c.normEps);

  // Pending MLP output of the previous block: added to the residual by the next fused norm.
  let pending: Value | null = null;
  const normWithResidual = (weight: Float32Array, name: string, outputName?: string): Value => {
    const gamma = g.constant(name, 'float32', [c.dim], weight);
    if (pending === null) {
      return g.op('SimplifiedLayerNormalization', [resid, gamma], { axis: -1, epsilon: eps }, outputName === undefined ? {} : { outputName });
    }
    // outputs: normed, mean, inv_std_var, input + skip (the new residual)
    const names = outputName === undefined ? {} : { outputNames: [outputName, `${name}.mean`, `${name}.inv_std`, `${name}.sum`] };
    const [normed, , , sum] = g.opN('SkipSimplifiedLayerNormalization', [pending, resid, gamma], 4, { epsilon: eps }, { domain: 'com.microsoft', ...names });
    resid = sum!;
    pending = null;
    return normed!;
  };

  for (const layer of segment.layers) {
    const lw = w.layers[layer]!;
    const { nHeads: H, nKvHeads: K, hidden: F } = layerWidth(c, lw);
    const xn = normWithResidual(lw.attnNorm, `attn_norm.${layer}`);
    // Each linear is a MatMul, DynamicQuantizeMatMul or MatMulNBits as its prepared form says (models/compress/linear.ts).
    let qkv = emitLinear(g, xn, `qkv.${layer}`, lw.qkv, c.dim, (H + 2 * K) * hs); // [1, S, (H+2K)*hs]
    // Qwen2's Q/K/V biases, fused and permuted like the weight columns (prepare.ts): one Add.
    if (lw.qkvBias) qkv = g.op('Add', [qkv, g.constant(`qkv_bias.${layer}`, 'float32', [(H + 2 * K) * hs], lw.qkvBias)]);
    // The runner also reads this step's own K (after RoPE) and V, `new_key.L`/`new_value.L`
    // [1, S, K*hs]: on WASM it keeps the cache on the host and never fetches present_* (see
    // workers/text/runner.ts). Named where produced, so no Identity nodes.
    const own = optimum ? {} : { outputNames: [`q_pre.${layer}`, `k_pre.${layer}`, `new_value.${layer}`] };
    const [q0, k0, v] = g.opN('Split', [qkv, g.ints([H * hs, K * hs, K * hs])], 3, { axis: 2 }, own);
    const q = g.op('RotaryEmbedding', [q0!, position, cos, sin], { interleaved: 1, num_heads: H }, { domain: 'com.microsoft' }); // [1, S, H*hs]
    const k = g.op('RotaryEmbedding', [k0!, position, cos, sin], { interleaved: 1, num_heads: K }, { domain: 'com.microsoft', ...(optimum ? {} : { outputName: `new_key.${layer}` }) }); // [1, S, K*hs]
    if (!optimum) {
      g.output(k, 'float32', [1, 'S', K * hs], `new_key.${layer}`);
      g.output(v!, 'float32', [1, 'S', K * hs], `new_value.${layer}`);
    }
    const slot = segment.layers.indexOf(layer);
    const pastK = optimum
      ? g.input(`past_key_values.${slot}.key`, 'float32', [B, K, 'P', hs])
      : g.input(`past_key.${layer}`, 'float32', kvCacheShape(attention, 'key', K, hs, 0).map((d, i) => (i === (attention === 'plain' ? 3 : 2) ? 'P' : d)));
    const pastV = g.input(optimum ? `past_key_values.${slot}.value` : `past_value.${layer}`, 'float32', [B, K, 'P', hs]);
    // Name the cache outputs where they are produced: renaming at g.output() would add an
    // Identity node per output, which onnxruntime cannot remove from graph outputs.
    const presentNames = optimum ? [`present.${slot}.key`, `present.${slot}.value`] : [`present_key.${layer}`, `present_value.${layer}`];
    const attnNames = [`attn.${layer}`, presentNames[0]!, presentNames[1]!];
    let attnOut: Value; // [1, S, H*hs]
    let presentK: Value;
    let presentV: Value;
    if (attention === 'onnx') {
      // Q [1, S, H*hs], K/V [1, S, K*hs]; past/present [1, K, P|T, hs]; mask [S, T] broadcast over heads.
      const [o, pk, pv] = g.opN('Attention', [q, k, v!, mask!, pastK, pastV], 3, { q_num_heads: H, kv_num_heads: K, scale: float(1) }, { outputNames: attnNames });
      attnOut = o!;
      presentK = pk!;
      presentV = pv!;
    } else if (attention === 'gqa') {
      const [o, pk, pv] = g.opN('GroupQueryAttention', [q, k, v!, pastK, pastV, seqlens!, total!], 3, { num_heads: H, kv_num_heads: K, scale: float(1) }, { domain: 'com.microsoft', outputNames: attnNames });
      attnOut = o!;
      presentK = pk!;
      presentV = pv!;
    } else {
      // q: [1, S, K, G, hs] -> [1, K, S, G, hs] -> [1, K, S*G, hs]; query head h = kvh*G + g reads KV head kvh.
      const q5 = g.op('Transpose', [g.op('Reshape', [q, g.ints([1, -1, K, G, hs])])], { perm: [0, 2, 1, 3, 4] });
      const q4 = g.op('Reshape', [q5, g.ints([1, K, -1, hs])]);
      // k: [1, S, K, hs] -> [1, K, hs, S], appended to the transposed cache along T.
      const kT = g.op('Transpose', [g.op('Reshape', [k, g.ints([1, -1, K, hs])])], { perm: [0, 2, 3, 1] });
      presentK = g.op('Concat', [pastK, kT], { axis: 3 }, { outputName: presentNames[0] }); // [1, K, hs, T]
      const v4 = g.op('Transpose', [g.op('Reshape', [v!, g.ints([1, -1, K, hs])])], { perm: [0, 2, 1, 3] });
      presentV = g.op('Concat', [pastV, v4], { axis: 2 }, { outputName: presentNames[1] }); // [1, K, T, hs]
      const scores = g.op('Add', [g.op('MatMul', [q4, presentK]), mask!]); // [1, K, S*G, T] (q is pre-scaled)
      const probs = g.op('Softmax', [scores], { axis: -1 });
      const o4 = g.op('MatMul', [probs, presentV]); // [1, K, S*G, hs]
      // [1, K, S, G*hs] -> [1, S, K, G*hs] -> [1, S, H*hs]
      const o = g.op('Transpose', [g.op('Reshape', [o4, g.ints([1, K, -1, G * hs])])], { perm: [0, 2, 1, 3] });
      attnOut = g.op('Reshape', [o, g.ints([1, -1, H * hs])]);
    }
    if (optimum) {
      g.output(presentK, 'float32', [B, K, 'T', hs], `present.${slot}.key`);
      g.output(presentV, 'float32', [B, K, 'T', hs], `present.${slot}.value`);
    } else {
      g.output(presentK, 'float32', kvCacheShape(attention, 'key', K, hs, 0).map((d, i) => (i === (attention === 'plain' ? 3 : 2) ? 'T' : d)), `present_key.${layer}`);
      g.output(presentV, 'float32', [1, K, 'T', hs], `present_value.${layer}`);
    }
    pending = emitLinear(g, attnOut, `wo.${layer}`, lw.wo, H * hs, c.dim); // [1, S, dim]
    if (lw.woBias) pending = g.op('Add', [pending, g.constant(`wo_bias.${layer}`, 'float32', [c.dim], lw.woBias)]);

    const xf = normWithResidual(lw.ffnNorm, `ffn_norm.${layer}`);
    const gu = emitLinear(g, xf, `gate_up.${layer}`, lw.gateUp, c.dim, 2 * F); // [1, S, 2*hidden]
    const [gate, up] = g.opN('Split', [gu, g.ints([F, F])], 2, { axis: 2 });
    const act = g.op('Mul', [g.op('Mul', [gate!, g.op('Sigmoid', [gate!])]), up!]); // silu(gate) * up
    pending = emitLinear(g, act, `down.${layer}`, lw.down, F, c.dim); // [1, S, dim]
    if (lw.downBias) pending = g.op('Add', [pending, g.constant(`down_bias.${layer}`, 'float32', [c.dim], lw.downBias)]);
  }

  if (segment.hiddenOut) {
    // The last MLP output still has to join the residual stream.
    const hidden = pending ? g.op('Add', [resid, pending], {}, { outputName: 'hidden_out' }) : resid;
    g.output(hidden, 'float32', [1, 'S', c.dim], 'hidden_out');
    resid = hidden;
    pending = null;
  }
  if (segment.head) {
    // Usually only the last position's logits are needed (prefill samples from it), so slice
    // first; verification of drafts (allLogits) and the optimum interface want every position.
    const last = (v: Value) => g.op('Slice', [v, g.ints([-1]), g.ints([2 ** 31 - 1]), g.ints([1])]); // [1, 1, dim]
    if (dropout) {
      const rows = g.input('logit_rows', 'int64', ['R']);
      const pick = (v: Value) => g.op('Gather', [v, rows], { axis: 1 }); // [1, R, dim]
      resid = pick(resid);
      if (pending) pending = pick(pending);
    } else if (!optimum && !segment.allLogits) {
      resid = last(resid);
      if (pending) pending = last(pending);
    }
    const normed = normWithResidual(w.finalNorm, 'final_norm', dropout ? 'final_normed' : undefined);
    const tiedFp32 = options.headFromEmbedding === true && c.tiedEmbeddings && w.head instanceof Float32Array;
    // The head's initializers live in this graph; the dropout variant applies them in two If
    // branches too, which read them from here (one copy).
    const headWeights = tiedFp32 ? [embeddingTable()] : linearInitializers(g, 'lm_head', w.head, c.dim, c.vocabSize);
    const head: HeadOp = (at, x, outputName) =>
      tiedFp32
        ? at.op('FusedMatMul', [x, headWeights[0]!], { transB: 1 }, { domain: 'com.microsoft', ...(outputName === undefined ? {} : { outputName }) }) // x @ embedding^T
        : linearOp(at, x, w.head, headWeights, outputName);
    if (dropout) {
      g.output(normed, 'float32', [1, 'R', c.dim], 'final_normed');
      emitScoredHead(g, normed, head, c.dim, c.vocabSize);
    } else {
      const logits = head(g, normed, 'logits');
      g.output(logits, 'float32', optimum ? [B, 'S', c.vocabSize] : [1, segment.allLogits ? 'S' : 1, c.vocabSize], 'logits');
    }
  }
  return { built: g.build({ opset: attention === 'onnx' ? 23 : 21 }), nodeCount: g.nodeCount, segment, attention };
}

/**
 * The dropout variant's head (SegmentOptions.dropout): one head MatMul over the logit rows and
 * the scored rows together, then the uncertainty reduction of the scored rows (see the option's
 * comment for the I/O). Why these quantities: with P̄ = S / n,
 * KL(P ‖ P̄) = Σ P (log P - log S) + log n, so the host finishes H and KL from O(N) numbers
 * (workers/text/dropout-uncertainty.ts) once S covers every marked row. Row dot products are
 * batched MatMuls ([N, 1, V] x [N, V, 1]) rather than Mul + ReduceSum, so no N x vocab product
 * tensor is allocated beside the logits, P and log P.
 *
 * Most runs (decode steps, members) score nothing: an `If` on `score` sends them through a
 * branch with the head alone (16 nodes fewer per step; measured in bench/RESULTS.md), and both
 * branches read the head's initializers from this graph. A scoring run may still score no row
 * (a prompt chunk whose marked rows are only normed for later), and onnxruntime refuses empty
 * tensors in these nodes (WASM TopK: "divide by zero"; WebGPU Softmax: "Invalid dispatch group
 * size (0, 1, 1)"), so the scored rows get one constant padding row (its outputs are ignored, and
 * row weights [1, 1, N + 1], 1 per real row and 0 for it, keep it out of Σ P).
 */
function emitScoredHead(g: GraphBuilder, normed: Value, head: HeadOp, dim: number, vocab: number): void {
  // Five inputs, not seven: every run feeds them (onnxruntime-web takes no optional graph input:
  // it refuses an input outside inputNames, which leaves out initializers), and each costs a run
  // some µs (stories260K: a decode step 1.19x the previous variant's with seven).
  const score = g.input('score', 'bool', []);
  const sizes = g.input('score_sizes', 'int64', [4]); // [head_rows, L, N, k]
  const scoredIn = g.input('scored_in', 'float32', [1, 'Q', dim]);
  const massIn = g.input('mass_in', 'float32', ['Vm']);
  const rowWeights = g.input('scored_weights', 'float32', [1, 1, 'N1']);
  const padding = g.constant('scored_padding', 'float32', [1, 1, vocab], new Float32Array(vocab));
  const outputs: [string, 'float32' | 'int64', Dim[]][] = [
    ['logits', 'float32', [1, 'L', vocab]],
    ['scored_plogp', 'float32', [1, 'N1', 1, 1]],
    ['scored_cross', 'float32', [1, 'N1', 1]],
    ['scored_mass', 'float32', [1, 1, vocab]],
    ['scored_top_ids', 'int64', [1, 'N1', 'k']],
  ];

  // score = false (decode steps, members: R = L rows, nothing scored): the head alone, and one-
  // element placeholders for the rest.
  const plain = g.branch('plain');
  plain.output(head(plain, normed, 'logits.plain'), 'float32', outputs[0]![2], 'logits.plain');
  const placeholder = (name: string, dtype: 'float32' | 'int64', rank: number) =>
    plain.output(plain.constant(`${name}.plain`, dtype, new Array<number>(rank).fill(1), dtype === 'int64' ? BigInt64Array.of(-1n) : Float32Array.of(0)), dtype, new Array<number>(rank).fill(1), `${name}.plain`);
  for (const [name, dtype, shape] of outputs.slice(1)) placeholder(name, dtype, shape.length);

  // score = true: one head MatMul over the logit rows and the scored rows, then the reduction.
  const t = g.branch('scored');
  const size = (from: number, to: number) => t.op('Slice', [sizes, t.ints([from]), t.ints([to])]);
  const headRows = size(0, 1);
  const split = size(1, 3);
  const k = size(3, 4);
  const own = t.op('Slice', [normed, t.ints([0]), headRows, t.ints([1])]); // [1, head_rows, dim]
  const all = head(t, t.op('Concat', [own, scoredIn], { axis: 1 })); // [1, L + N, vocab]
  const [logits, z] = t.opN('Split', [all, split], 2, { axis: 1 }, { outputNames: ['logits.scored', 'scored_logits'] });
  const padded = t.op('Concat', [z!, padding], { axis: 1 }); // [1, N + 1, vocab]
  const [, ids] = t.opN('TopK', [padded, k], 2, { axis: -1, largest: 1, sorted: 1 }, { outputNames: ['scored_top_values', 'scored_top_ids.scored'] });
  const p = t.op('Softmax', [padded], { axis: -1 }); // [1, N + 1, vocab]
  const logP = t.op('LogSoftmax', [padded], { axis: -1 }); // [1, N + 1, vocab]
  const plogp = t.op('MatMul', [t.op('Unsqueeze', [p, t.ints([2])]), t.op('Unsqueeze', [logP, t.ints([3])])], {}, { outputName: 'scored_plogp.scored' }); // [1, N + 1, 1, 1]
  // Σ P over the real rows only: weights 1 for them, 0 for the padding row (exact, no subtraction).
  const mass = t.op('MatMul', [rowWeights, p], {}, { outputName: 'scored_mass.scored' }); // [1, 1, vocab]
  // S >= every P of the run in it, so S is 0 only where they all underflowed to 0; the clamp
  // keeps 0 * log 0 from being NaN there (a P recomputed elsewhere, fed in mass_in, is > 0 anyway).
  const logS = t.op('Log', [t.op('Max', [t.op('Add', [mass, massIn]), t.scalar(1.1754944e-38, 'tiny')])]); // [1, 1, vocab]
  const cross = t.op('MatMul', [p, t.op('Reshape', [logS, t.ints([vocab, 1])])], {}, { outputName: 'scored_cross.scored' }); // [1, N + 1, 1]
  // A branch's outputs are the If's, in the same order.
  [logits!, plogp, cross, mass, ids!].forEach((v, i) => t.output(v, outputs[i]![1], outputs[i]![2]));

  const results = g.opN('If', [score], outputs.length, { then_branch: { kind: 'graph', graph: t }, else_branch: { kind: 'graph', graph: plain } }, { outputNames: outputs.map(([name]) => name) });
  outputs.forEach(([name, dtype, shape], i) => g.output(results[i]!, dtype, shape, name));
}

/** Applies the LM head to `x` [1, rows, dim] in `at` (this graph or an If branch of it) -> [1, rows, vocab]. */
type HeadOp = (at: GraphBuilder, x: Value, outputName?: string) => Value;

/**
 * Additive attention mask [B, 1, S, T] from optimum's int64 `attention_mask` [B, T]: key t is
 * visible to query s when t <= (T - S) + s (causal, queries are the last S positions) and the
 * mask has a 1 there (padding).
 */
function optimumMask(g: GraphBuilder): Value {
  const am = g.input('attention_mask', 'int64', ['batch_size', 'T']);
  const scalar = (v: number, name: string) => g.constant(name, 'int64', [], BigInt64Array.of(BigInt(v)));
  const zero = scalar(0, 'mask_zero');
  const one = scalar(1, 'mask_one');
  const T = g.op('Gather', [g.op('Shape', [am]), one], { axis: 0 }); // scalar
  const S = g.op('Gather', [g.op('Shape', [{ name: 'input_ids' }]), one], { axis: 0 });
  const keys = g.op('Unsqueeze', [g.op('Range', [zero, T, one]), g.ints([0])]); // [1, T]
  const queries = g.op('Unsqueeze', [g.op('Add', [g.op('Range', [zero, S, one]), g.op('Sub', [T, S])]), g.ints([1])]); // [S, 1]
  const causal = g.op('LessOrEqual', [keys, queries]); // [S, T]
  const padding = g.op('Cast', [g.op('Unsqueeze', [am, g.ints([1, 2])])], { to: 9 }); // [B, 1, 1, T] bool
  const allowed = g.op('And', [causal, padding]); // [B, 1, S, T]
  return g.op('Where', [allowed, g.scalar(0), g.scalar(MASKED_SCORE)]);
}

/** Masked scores: large negative rather than -Infinity, so no row can turn into NaN. */
const MASKED_SCORE = -3.0e38;
