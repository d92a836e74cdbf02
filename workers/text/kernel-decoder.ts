/**
 * One decode step (one new position through every kept block, the final norm and the head) on
 * Whittle's own WebAssembly SIMD kernels (workers/kernels/) instead of onnxruntime's graphs:
 * the WASM backend's fast path for int8 weights (q8, and q4 run as int8) and for fp32 plans of
 * bf16 checkpoints (the kernels keep those weights as bf16: the same values, half the bytes a
 * step reads; fp32 weights that are not all bf16 are kept as fp32). PlanRunner keeps
 * onnxruntime for everything else (prefill, drafts, verification, dropout rows) and feeds this
 * decoder the K/V those runs append, so either path can take the next step.
 *
 * Why: a decode step multiplies one row by every weight. onnxruntime-web's WASM int8 kernel
 * (MLAS's DynamicQuantizeMatMul, built for GEMM) runs those products at 4.0-6.7 GMAC/s at
 * SmolLM2-135M's shapes; the kernel here runs them at 14-20 GMAC/s from cache, so a step is
 * bound by memory bandwidth instead (bench/RESULTS.md, "Decode kernel"). What it costs: a second
 * copy of the int8 weights (onnxruntime keeps its own for the other runs), hence
 * PlanRunner.compile's size rule.
 *
 * Numerics: the weights are the same int8 per-channel values DynamicQuantizeMatMul reads; the
 * activations are quantized per row to 11 bits symmetric (onnxruntime: 8 bits asymmetric), the
 * products summed exactly in int32, everything else in fp32. fp32 and bf16 products sum fp32
 * in another order than MLAS (~1e-6 relative). Attention, RoPE (interleaved pairs)
 * and RMSNorm compute what the graphs' ops do (models/llama/graph.ts); q arrives pre-scaled.
 *
 * @example
 * const decoder = new KernelDecoder(KernelHeap.create(), config, headSize, plan.layers, rope);
 * for (const l of plan.layers) decoder.addLayer(l, prepared.layers[l]);
 * decoder.setHead(prepared.finalNorm, prepared.head);
 * const logits = decoder.step(embeddingRow, position, (l, key, value) => hostKv(l).append(key, value, 1));
 */
import { WhittleError } from '../../core/errors.ts';
import type { LlamaConfig } from '../../models/llama/types.ts';
import { layerWidth, type PreparedLayer } from '../../models/llama/prepare.ts';
import type { LinearWeight } from '../../models/compress/linear.ts';
import type { KernelHeap } from '../kernels/kernel-heap.ts';
import type { KernelThreads } from '../kernels/kernel-threads.ts';
import { bf16Padding, f32Padding, int8Padding, isBf16Exact, packBf16Columns, packF32Columns, packInt8Columns, roundUp } from '../kernels/kernel-pack.ts';

/** A matrix in the kernels' memory: int8 with per-output scales, bf16 (fp32 values that are all bf16), or fp32. */
interface PackedLinear {
  kind: 'int8' | 'bf16' | 'f32';
  /** Weights, blocked (kernel-pack.ts). */
  w: number;
  /** int8: scales [Npad]; fp32: 0. */
  scales: number;
  K: number;
  N: number;
  Kpad: number;
  Npad: number;
}

/** One layer's K and V: [KV][cap][hs] each, the first `length` positions filled. */
interface KvMirror {
  keys: number;
  values: number;
  cap: number;
  length: number;
}

interface KernelLayer {
  H: number;
  KV: number;
  F: number;
  attnNorm: number;
  ffnNorm: number;
  qkv: PackedLinear;
  wo: PackedLinear;
  gateUp: PackedLinear;
  down: PackedLinear;
  /** Biases [Npad] or 0. */
  qkvBias: number;
  woBias: number;
  downBias: number;
  kv: KvMirror;
}

/** Scratch buffers of a step, sized once every layer is in. */
interface Scratch {
  x: number;
  xn: number;
  q16: number;
  qkv: number;
  attn: number;
  o: number;
  gu: number;
  act: number;
  cos: number;
  sin: number;
  logits: number;
  /** [G][scoresCap] */
  scores: number;
  scoresCap: number;
}

/** Growth of a KV mirror, in positions (as the host cache's, runner.ts). */
const KV_GROWTH = 64;

/** Whether the kernels read a linear: int8 per channel or fp32 (int4, sparse and other forms stay on the graphs). */
function kernelReadsLinear(w: LinearWeight): boolean {
  return w instanceof Float32Array || w.kind === 'int8';
}

/** Whether a prepared layer's linears are all in forms the kernels read. */
export function kernelReadsLayer(layer: PreparedLayer): boolean {
  return kernelReadsLinear(layer.qkv) && kernelReadsLinear(layer.wo) && kernelReadsLinear(layer.gateUp) && kernelReadsLinear(layer.down);
}

/**
 * Bytes per weight the kernels keep of a layer's linears, on average: 1 for int8; 2 for fp32
 * values that are all bf16 (a bf16 checkpoint: the kernels keep and read half the bytes,
 * exactly); 4 for other fp32 ones. A bf16 checkpoint's q|k|v matrix is fp32 here when the
 * 1 / sqrt(head size) folded into its q columns is not a power of two (head size 20, 128: a
 * few per cent of the layer), so the average sits just above 2.
 */
export function kernelBytesPerWeight(layer: PreparedLayer): number {
  let bytes = 0;
  let weights = 0;
  for (const w of [layer.qkv, layer.wo, layer.gateUp, layer.down]) {
    const n = w instanceof Float32Array ? w.length : w.kind === 'int8' ? w.weight.b.length : 0;
    bytes += n * (w instanceof Float32Array ? (isBf16Exact(w) ? 2 : 4) : 1);
    weights += n;
  }
  return weights > 0 ? bytes / weights : 4;
}

/** Whether the head is in a form the kernels read (int8 per channel or fp32 [dim, vocab]). */
export function kernelReadsHead(head: LinearWeight): boolean {
  return head instanceof Float32Array || head.kind === 'int8';
}

export class KernelDecoder {
  private readonly layers = new Map<number, KernelLayer>();
  private finalNorm = 0;
  private head: PackedLinear | null = null;
  private scratch: Scratch | null = null;
  /** A helper thread that takes half of each product (KernelThreads), when the heap is shared and one started. */
  private threads: KernelThreads | null = null;
  /** Whether this step may use the helper (PlanRunner decides per step: runner.ts helperMode). */
  helperOn = true;

  constructor(
    readonly heap: KernelHeap,
    private readonly config: LlamaConfig,
    private readonly headSize: number,
    /** The blocks a step runs, in order (the plan's kept layers). */
    readonly order: readonly number[],
    /** RoPE tables [maxSeqLen, headSize / 2] (prepare.ts); read one row per step. */
    private readonly rope: { cos: Float32Array; sin: Float32Array },
  ) {
    if (headSize % 4 !== 0) throw new WhittleError('UNSUPPORTED', `the decode kernels need a head size divisible by 4, not ${headSize}`);
  }

  /** Copies one prepared layer's weights into the kernels' memory (its arrays may be released afterwards). */
  addLayer(index: number, layer: PreparedLayer): void {
    if (!kernelReadsLayer(layer)) throw new WhittleError('INTERNAL', `layer ${index}: the decode kernels read int8 and fp32 linears only`);
    const { nHeads: H, nKvHeads: KV, hidden: F } = layerWidth(this.config, layer);
    const dim = this.config.dim;
    const hs = this.headSize;
    const qkv = this.packLinear(layer.qkv, dim, (H + 2 * KV) * hs);
    const existing = this.layers.get(index);
    if (existing) this.freeLayer(existing);
    this.layers.set(index, {
      H,
      KV,
      F,
      attnNorm: this.heap.allocF32(layer.attnNorm),
      ffnNorm: this.heap.allocF32(layer.ffnNorm),
      qkv,
      wo: this.packLinear(layer.wo, H * hs, dim),
      gateUp: this.packLinear(layer.gateUp, dim, 2 * F),
      down: this.packLinear(layer.down, F, dim),
      qkvBias: this.padded(layer.qkvBias, qkv.Npad),
      woBias: this.padded(layer.woBias, roundUp(dim, 4)),
      downBias: this.padded(layer.downBias, roundUp(dim, 4)),
      kv: { keys: 0, values: 0, cap: 0, length: 0 },
    });
    this.dropScratch();
  }

  /** The final norm [dim] and the head: int8 per channel, or fp32 [dim, vocab]. */
  setHead(finalNorm: Float32Array, head: LinearWeight): void {
    if (!kernelReadsHead(head)) throw new WhittleError('INTERNAL', 'the decode kernels read an int8 or fp32 head only');
    if (this.head) this.freeLinear(this.head);
    if (this.finalNorm) this.heap.free(this.finalNorm);
    this.finalNorm = this.heap.allocF32(finalNorm);
    this.head = this.packLinear(head, this.config.dim, this.config.vocabSize);
    this.dropScratch();
  }

  /** Splits the products with a helper thread from now on (its heap must be this decoder's). */
  useThreads(threads: KernelThreads): void {
    this.threads = threads;
  }

  /** Threads the products run on: 2 with a running helper, else 1. */
  get threadCount(): number {
    return this.threads?.running ? 2 : 1;
  }

  /** Stops the helper thread, if any (the decoder keeps working on one thread). */
  dispose(): void {
    this.threads?.stop();
    this.threads = null;
  }

  /** Whether every block of `order` and the head are in: the decoder can step. */
  get complete(): boolean {
    return this.head !== null && this.order.every((l) => this.layers.has(l));
  }

  /** Positions layer `l` has cached. */
  lengthOf(l: number): number {
    return this.layers.get(l)?.kv.length ?? 0;
  }

  /** Bytes of the kernels' memory (weights, caches, scratch). */
  get reservedBytes(): number {
    return this.heap.reservedBytes;
  }

  /** Appends S positions of layer `l`'s K (after RoPE) and V, [S, KV*hs] each, as another path computed them. */
  append(l: number, newKey: Float32Array, newValue: Float32Array, S: number): void {
    const layer = this.layers.get(l);
    if (!layer) return;
    const { KV } = layer;
    const hs = this.headSize;
    this.reserve(layer, layer.kv.length + S);
    const keys = this.heap.f32(layer.kv.keys, KV * layer.kv.cap * hs);
    const values = this.heap.f32(layer.kv.values, KV * layer.kv.cap * hs);
    for (let s = 0; s < S; s++) {
      const t = layer.kv.length + s;
      for (let j = 0; j < KV; j++) {
        const src = (s * KV + j) * hs;
        keys.set(newKey.subarray(src, src + hs), (j * layer.kv.cap + t) * hs);
        values.set(newValue.subarray(src, src + hs), (j * layer.kv.cap + t) * hs);
      }
    }
    layer.kv.length += S;
  }

  /** Forgets cached positions at and after `length` in every layer. */
  truncate(length: number): void {
    for (const layer of this.layers.values()) layer.kv.length = Math.min(layer.kv.length, length);
  }

  /** Empties every layer's cache (keeping its memory for the next sequence). */
  reset(): void {
    this.truncate(0);
  }

  /**
   * Runs the token whose embedding row is `embedding` [dim] at `position` through every block of
   * `order`, the final norm and the head; returns the logits [vocab] (a copy). Each block's own K
   * and V are appended to its cache and handed to `onKv` ([KV*hs] each, views valid during the call).
   */
  step(embedding: Float32Array, position: number, onKv: (layer: number, key: Float32Array, value: Float32Array) => void): Float32Array {
    if (!this.complete) throw new WhittleError('INTERNAL', 'the decoder has not been given every layer and the head');
    const c = this.config;
    const dim = c.dim;
    const hs = this.headSize;
    const half = hs / 2;
    if (embedding.length !== dim) throw new WhittleError('INTERNAL', `embedding row of ${embedding.length}, not ${dim}`);
    for (const l of this.order) {
      const length = this.layers.get(l)!.kv.length;
      if (length !== position) throw new WhittleError('INTERNAL', `layer ${l} caches ${length} positions, the step is at ${position}`);
    }
    const { kernels: k } = this.heap;
    for (const l of this.order) this.reserve(this.layers.get(l)!, position + 1);
    const s = this.ensureScratch(position + 1);
    this.heap.f32(s.x, dim).set(embedding);
    this.heap.f32(s.cos, half).set(this.rope.cos.subarray(position * half, (position + 1) * half));
    this.heap.f32(s.sin, half).set(this.rope.sin.subarray(position * half, (position + 1) * half));
    const eps = c.normEps;
    for (const l of this.order) {
      const L = this.layers.get(l)!;
      const { H, KV, F } = L;
      k.rmsNorm(s.x, L.attnNorm, s.xn, dim, eps);
      this.linear(L.qkv, s.xn, L.qkvBias, s.qkv);
      k.rope(s.qkv, s.cos, s.sin, H, hs);
      const keyAt = s.qkv + H * hs * 4;
      const valueAt = keyAt + KV * hs * 4;
      k.rope(keyAt, s.cos, s.sin, KV, hs);
      const key = this.heap.f32(keyAt, KV * hs);
      const value = this.heap.f32(valueAt, KV * hs);
      this.append(l, key, value, 1);
      onKv(l, key, value);
      k.attend(s.qkv, L.kv.keys, L.kv.values, s.attn, s.scores, H, KV, hs, position + 1, L.kv.cap);
      this.linear(L.wo, s.attn, L.woBias, s.o);
      k.addInPlace(s.x, s.o, dim);
      k.rmsNorm(s.x, L.ffnNorm, s.xn, dim, eps);
      this.linear(L.gateUp, s.xn, 0, s.gu);
      k.siluMul(s.gu, s.act, F);
      this.linear(L.down, s.act, L.downBias, s.o);
      k.addInPlace(s.x, s.o, dim);
    }
    k.rmsNorm(s.x, this.finalNorm, s.xn, dim, eps);
    this.linear(this.head!, s.xn, 0, s.logits);
    return this.heap.f32(s.logits, c.vocabSize).slice();
  }

  /** y = W x (+ bias): x [K] f32 at `x` (zeros after K when the matrix is fp32), y [Npad]. */
  private linear(m: PackedLinear, x: number, bias: number, y: number): void {
    const { kernels: k } = this.heap;
    // With a helper thread, it computes the second half of the rows meanwhile (same results: each row is one thread's).
    const run = this.threads?.running && this.helperOn ? this.threads : k;
    if (m.kind === 'f32') {
      run.gemvF32(m.w, x, bias, y, m.Npad, m.Kpad);
      return;
    }
    if (m.kind === 'bf16') {
      run.gemvBf16(m.w, x, bias, y, m.Npad, m.Kpad);
      return;
    }
    const scale = k.quantizeActivations(x, this.scratch!.q16, m.K, m.Kpad);
    run.gemvInt8(m.w, m.scales, this.scratch!.q16, scale, bias, y, m.Npad, m.Kpad);
  }

  private packLinear(w: LinearWeight, K: number, N: number): PackedLinear {
    if (w instanceof Float32Array) {
      if (w.length !== K * N) throw new WhittleError('INTERNAL', `linear of ${w.length} values used as [${K}, ${N}]`);
      if (isBf16Exact(w)) {
        // Widened from bf16: the same values in half the bytes (a step reads every weight once).
        const { Kpad, Npad } = bf16Padding(K, N);
        const ptr = this.heap.alloc(Kpad * Npad * 2);
        packBf16Columns(w, K, N, this.heap.u16(ptr, Kpad * Npad));
        return { kind: 'bf16', w: ptr, scales: 0, K, N, Kpad, Npad };
      }
      const { Kpad, Npad } = f32Padding(K, N);
      const ptr = this.heap.alloc(Kpad * Npad * 4);
      packF32Columns(w, K, N, this.heap.f32(ptr, Kpad * Npad));
      return { kind: 'f32', w: ptr, scales: 0, K, N, Kpad, Npad };
    }
    if (w.kind !== 'int8') throw new WhittleError('INTERNAL', `the decode kernels do not read ${w.kind} weights`);
    if (w.weight.K !== K || w.weight.N !== N)
      throw new WhittleError('INTERNAL', `linear quantized as [${w.weight.K}, ${w.weight.N}], used as [${K}, ${N}]`);
    const { Kpad, Npad } = int8Padding(K, N);
    const ptr = this.heap.alloc(Kpad * Npad);
    packInt8Columns(w.weight.b, K, N, this.heap.i8(ptr, Kpad * Npad));
    const scales = this.heap.alloc(Npad * 4);
    this.heap.f32(scales, N).set(w.weight.scales);
    return { kind: 'int8', w: ptr, scales, K, N, Kpad, Npad };
  }

  /** A zero-padded copy of an optional bias, or 0 (none). */
  private padded(bias: Float32Array | undefined, n: number): number {
    if (!bias) return 0;
    const ptr = this.heap.alloc(n * 4);
    this.heap.f32(ptr, bias.length).set(bias);
    return ptr;
  }

  /** Room for `positions` in a layer's cache, regrown KV_GROWTH at a time (the filled part copied). */
  private reserve(layer: KernelLayer, positions: number): void {
    const kv = layer.kv;
    if (positions <= kv.cap) return;
    const hs = this.headSize;
    const cap = roundUp(positions, KV_GROWTH);
    const keys = this.heap.alloc(layer.KV * cap * hs * 4);
    const values = this.heap.alloc(layer.KV * cap * hs * 4);
    if (kv.cap > 0) {
      for (const [from, to] of [
        [kv.keys, keys],
        [kv.values, values],
      ] as const) {
        const src = this.heap.f32(from, layer.KV * kv.cap * hs);
        const dst = this.heap.f32(to, layer.KV * cap * hs);
        for (let j = 0; j < layer.KV; j++) dst.set(src.subarray(j * kv.cap * hs, (j * kv.cap + kv.length) * hs), j * cap * hs);
      }
      this.heap.free(kv.keys);
      this.heap.free(kv.values);
    }
    layer.kv = { keys, values, cap, length: kv.length };
  }

  /** Query heads per KV head (attend's scores hold a row per query head of a group). */
  private get groups(): number {
    return this.config.nHeads / this.config.nKvHeads;
  }

  /** The step's scratch, sized for the widest layer and `positions` attention scores per query head of a group. */
  private ensureScratch(positions: number): Scratch {
    if (this.scratch && this.scratch.scoresCap >= positions) return this.scratch;
    if (this.scratch) {
      this.heap.free(this.scratch.scores);
      const scoresCap = roundUp(positions, KV_GROWTH);
      this.scratch = { ...this.scratch, scores: this.heap.alloc(scoresCap * this.groups * 4), scoresCap };
      return this.scratch;
    }
    const dim = this.config.dim;
    const hs = this.headSize;
    let kMax = roundUp(dim, 16);
    let qkvMax = 0;
    let attnMax = 0;
    let guMax = 0;
    let actMax = 0;
    for (const L of this.layers.values()) {
      kMax = Math.max(kMax, L.qkv.Kpad, L.wo.Kpad, L.gateUp.Kpad, L.down.Kpad);
      qkvMax = Math.max(qkvMax, L.qkv.Npad);
      attnMax = Math.max(attnMax, roundUp(L.H * hs, 16));
      guMax = Math.max(guMax, L.gateUp.Npad);
      actMax = Math.max(actMax, roundUp(L.F, 16));
    }
    const f32 = (n: number) => this.heap.alloc(n * 4);
    const scoresCap = roundUp(positions, KV_GROWTH);
    this.scratch = {
      x: f32(roundUp(dim, 4)),
      xn: f32(roundUp(dim, 16)),
      q16: this.heap.alloc(kMax * 2),
      qkv: f32(qkvMax),
      attn: f32(attnMax),
      o: f32(roundUp(dim, 4)),
      gu: f32(guMax),
      act: f32(actMax),
      cos: f32(hs / 2),
      sin: f32(hs / 2),
      logits: f32(this.head!.Npad),
      scores: f32(scoresCap * this.groups),
      scoresCap,
    };
    return this.scratch;
  }

  private dropScratch(): void {
    if (!this.scratch) return;
    const s = this.scratch;
    for (const ptr of [s.x, s.xn, s.q16, s.qkv, s.attn, s.o, s.gu, s.act, s.cos, s.sin, s.logits, s.scores]) this.heap.free(ptr);
    this.scratch = null;
  }

  private freeLinear(m: PackedLinear): void {
    this.heap.free(m.w);
    if (m.scales) this.heap.free(m.scales);
  }

  private freeLayer(L: KernelLayer): void {
    for (const m of [L.qkv, L.wo, L.gateUp, L.down]) this.freeLinear(m);
    for (const ptr of [L.attnNorm, L.ffnNorm, L.qkvBias, L.woBias, L.downBias, L.kv.keys, L.kv.values]) if (ptr) this.heap.free(ptr);
  }
}
