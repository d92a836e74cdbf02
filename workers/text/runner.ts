/**
 * A compiled plan: one onnxruntime session per segment plus the per-layer KV caches, and the
 * step function that feeds tokens through them. No sampling, no text: tokens in, logits out.
 *
 * KV design (see models/llama/README.md): each step's graph takes `past_*` [1, K, P, hs] and
 * computes `present_*` = past ++ new inside the attention op; it also outputs the step's own
 * `new_key`/`new_value` [1, S, K*hs].
 * - WASM: the cache lives on the host (`HostKv`, grown 64 positions at a time, fed to the graph
 *   as it is with the unfilled slots masked) and the runner fetches only logits and new_*;
 *   present_* is never copied out. onnxruntime-web
 *   allocates a fresh typed array for every output it returns, and in Chromium allocating and
 *   dropping arrays of a few KB per step costs tens of microseconds each (the pages go back to
 *   the OS and fault in again): fetching the whole cache every step made a decode step ~5x
 *   slower in a Chromium worker than in Node. Truncation (rejected drafts) is just a length.
 * - WebGPU: present_* stay in GPU buffers (`preferredOutputLocation`) and are fed back as the
 *   next past, so the cache never leaves the GPU.
 */
import { WhittleError, throwIfAborted } from '../../core/errors.ts';
import { releaseAllIn, releaseNow } from '../../core/release.ts';
import { attentionMaskShape, buildSegment, kvCacheShape, type AttentionKind, type SegmentOptions } from '../../models/llama/graph.ts';
import { planSegments, splitSegments, type Segment } from '../../models/llama/plan.ts';
import { heldLayerwise, layerWidth, type LayerwiseWeights, type PreparedLayer, type PreparedWeights } from '../../models/llama/prepare.ts';
import { gatherRows } from '../../models/llama/weight-reader.ts';
import { linearBytes } from '../../models/compress/linear.ts';
import type { LlamaPlan } from '../../models/llama/types.ts';
import { createSession, type Backend, type OrtModule } from '../ort/runtime.ts';
import { KernelHeap, kernelsSupported } from '../kernels/kernel-heap.ts';
import { KernelThreads } from '../kernels/kernel-threads.ts';
import { KernelDecoder, kernelBytesPerWeight, kernelReadsHead, kernelReadsLayer } from './kernel-decoder.ts';
import { HelperTimes } from './helper-times.ts';
import { int8Padding } from '../kernels/kernel-pack.ts';
import type * as Ort from 'onnxruntime-web';

interface CompiledSegment {
  session: Ort.InferenceSession;
  layers: number[];
  head: 'final' | 'exit' | null;
  nodeCount: number;
}

/** How long after an onnxruntime run the decode kernels leave its pool threads the cores (ms): they spin that long (~270 ms measured in Node). */
const ORT_SPIN_MS = 300;

/** Default `PlanRunner.prefillChunk` (positions per prefill run), from the measurement in models/llama/README.md. */
export const PREFILL_CHUNK = 64;

/** Large negative instead of -Infinity: masked scores stay finite, so no inf - inf = NaN anywhere. */
const MASKED = -3.0e38;

/**
 * The inputs every segment of one step shares, for S new positions after P cached ones:
 * `position` and the causal attention mask ('plain'/'onnx') or GroupQueryAttention's sequence
 * lengths ('gqa'). Shared by the plan runner and the probe runner (probe-runner.ts), so both feed
 * the graphs the same way. The mask's data is one buffer reused across steps: fresh typed arrays
 * of a few KB per step are what made Chromium slow (see HostKv).
 */
export class StepInputs {
  private maskBuffer = new Float32Array(0);

  constructor(
    private readonly ort: OrtModule,
    private readonly attention: AttentionKind,
    /** Query heads per KV head. */
    private readonly groups: number,
  ) {}

  /**
   * Feeds for a step; the mask tensor views the reused buffer, valid until the next call.
   * `pastSlots` (>= P) is how many positions the past tensors hold: the host cache feeds its
   * whole buffer, of which only the first P are filled, so slots P..pastSlots-1 are masked and
   * the S new positions follow at pastSlots.. ('gqa' needs no mask: it reads seqlens_k).
   */
  feeds(P: number, S: number, pastSlots = P): Record<string, Ort.Tensor> {
    const T = pastSlots + S;
    const feeds: Record<string, Ort.Tensor> = {
      position: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(P)), [1]),
    };
    const maskShape = attentionMaskShape(this.attention, this.groups, S, T);
    if (maskShape) {
      // Row r is query s = floor(r / rowsPerQuery) ('plain' repeats each query once per head in its group).
      const rowsPerQuery = maskShape[0] / S;
      const n = maskShape[0] * T;
      if (this.maskBuffer.length < n) this.maskBuffer = new Float32Array(Math.max(n, this.maskBuffer.length * 2));
      const mask = this.maskBuffer.subarray(0, n);
      mask.fill(0);
      for (let r = 0; r < maskShape[0]; r++) {
        mask.fill(MASKED, r * T + P, r * T + pastSlots); // unfilled slots of the cache buffer
        mask.fill(MASKED, r * T + pastSlots + Math.floor(r / rowsPerQuery) + 1, (r + 1) * T); // causal
      }
      feeds.attention_mask = new this.ort.Tensor('float32', mask, maskShape);
    } else {
      // Filled positions only: GroupQueryAttention reads the first seqlens_k + 1 - S of each
      // head's pastSlots and writes the new ones right after them.
      feeds.seqlens_k = new this.ort.Tensor('int32', Int32Array.of(P + S - 1), [1]);
      feeds.total_seq_len = new this.ort.Tensor('int32', Int32Array.of(P + S), []);
    }
    return feeds;
  }

  /**
   * An attention mask whose query rows the caller writes: `fill(s, row)` gets query s's row of
   * T scores, zeroed, to set `MASKED` where s must not look ('plain' copies it to every head of
   * the group). Dropout decoding's members (dropout-decode.ts). Views the reused buffer, like `feeds`.
   */
  rowMask(S: number, T: number, fill: (s: number, row: Float32Array) => void): Ort.Tensor {
    const shape = attentionMaskShape(this.attention, this.groups, S, T);
    if (!shape) throw new WhittleError('UNSUPPORTED', "GroupQueryAttention takes no mask; dropout decoding compiles 'plain' or 'onnx' graphs");
    const rowsPerQuery = shape[0] / S;
    const n = shape[0] * T;
    if (this.maskBuffer.length < n) this.maskBuffer = new Float32Array(Math.max(n, this.maskBuffer.length * 2));
    const mask = this.maskBuffer.subarray(0, n);
    mask.fill(0);
    for (let s = 0; s < S; s++) {
      const first = mask.subarray(s * rowsPerQuery * T, (s * rowsPerQuery + 1) * T);
      fill(s, first);
      for (let r = 1; r < rowsPerQuery; r++) mask.set(first, (s * rowsPerQuery + r) * T);
    }
    return new this.ort.Tensor('float32', mask, shape);
  }
}

/** The masked score, for `StepInputs.rowMask` callers. */
export const MASKED_SCORE = MASKED;

/**
 * One run of the dropout variant's graphs (SegmentOptions.dropout) with rows the caller lays out:
 * dropout decoding's prefill (logits of the marked context rows) and its members (S copies of
 * one token at one position, each under its own mask, not appended to the caches).
 */
export interface RowsRun {
  /** Position of each new row (RoPE); rows may share one. */
  positions: readonly number[];
  /** The rows whose logits come back, in this order: logits [R * vocab]. */
  logitRows: readonly number[];
  /** Context-uncertainty rows of the run (dropout-uncertainty.ts); none by default. */
  scoring?: RowsScoring;
  /**
   * Writes query s's mask row over T = slots + S positions (past slots, then the new rows);
   * default: causal over the filled cache. `P` is the cache length, `slots` the positions the
   * past tensors hold (slots P.. are unfilled).
   */
  mask?: (s: number, row: Float32Array, P: number, slots: number) => void;
  /** Append the new rows to the caches and advance `position` (false: scratch rows, the caches stay). */
  append: boolean;
  /**
   * With `append`: only rows appendFrom.. are cached (default 0, all); the rows before are
   * scratch. WASM only (`canAppendRows`): on WebGPU present_* holds every row.
   */
  appendFrom?: number;
}

/**
 * What a `rows` run does for the context uncertainty, in the graph (models/llama/graph.ts
 * `emitScoredHead`): `marked` rows of the run go through the final norm (returned, so a later
 * run can score them: `RowsResult.normed`); with `scoreOwn` the head also scores them, and it
 * scores `scoredIn` (rows a previous run returned). S, the mass scores are taken against, is
 * the scored rows' Σ P plus `massIn`.
 */
export interface RowsScoring {
  /** Rows of this run (indices into its new rows) that are marked context. */
  marked: readonly number[];
  /** Score the marked rows here too (else only their normed states come back). */
  scoreOwn: boolean;
  /** Final-normed rows from earlier runs [Q * dim]. */
  scoredIn: Float32Array;
  /** Σ_i P_i of marked rows scored in other runs [vocab]; default none. */
  massIn?: Float32Array;
  topK: number;
  /** Fetch the scored rows' Σ P (`RowsResult.scored.mass`, [vocab]); only the two-pass path needs it. */
  wantMass?: boolean;
}

/** A `rows` run's outputs beyond the logits; `scored` is in scoring order: own marked rows, then `scoredIn`'s. */
export interface RowsResult {
  logits: Float32Array;
  /** The marked rows after the final norm [marked * dim]. */
  normed: Float32Array;
  /**
   * Per scored row: Σ P log P (= -H), Σ P log S, top-k ids [N * k]; Σ P over them [vocab] (with
   * `wantMass`). Empty when the run scored nothing.
   */
  scored: { plogp: Float32Array; cross: Float32Array; mass: Float32Array; topIds: BigInt64Array };
}

/** The dropout variant's uncertainty outputs: fetched only by runs that score (RowsScoring), and only those they use. */
const SCORING_OUTPUTS = ['final_normed', 'scored_plogp', 'scored_cross', 'scored_mass', 'scored_top_ids'];

/** Which of SCORING_OUTPUTS a run fetches: the normed rows always, per-row sums when it scores rows, Σ P when asked. */
function scoringFetches(scoring: RowsScoring | undefined, dim: number): Set<string> {
  if (!scoring) return new Set();
  const scores = (scoring.scoreOwn && scoring.marked.length > 0) || scoring.scoredIn.length / dim > 0;
  return new Set(['final_normed', ...(scores ? ['scored_plogp', 'scored_cross', 'scored_top_ids'] : []), ...(scores && scoring.wantMass ? ['scored_mass'] : [])]);
}

/**
 * A K or V tensor as rows: [K, T, hs] is K rows of T positions of `hs` values (`unit` = hs); a
 * transposed 'plain' key [K, hs, T] is K*hs rows of T single values (`unit` = 1).
 */
interface KvRows {
  rows: number;
  unit: number;
}

function kvRows(K: number, hs: number, transposed: boolean): KvRows {
  return transposed ? { rows: K * hs, unit: 1 } : { rows: K, unit: hs };
}

/** Copies the first `length` positions of every row from a tensor of `fromT` positions into one of `toT`. */
function copyPositions(layout: KvRows, from: Float32Array, fromT: number, to: Float32Array, toT: number, length: number): void {
  const { rows, unit } = layout;
  for (let r = 0; r < rows; r++) to.set(from.subarray(r * fromT * unit, (r * fromT + length) * unit), r * toT * unit);
}

/**
 * Growth step of a host cache, in positions. The graphs read the whole buffer (unfilled slots
 * masked, see `HostKv`), so a coarse step would make attention and onnxruntime's input copy
 * work on up to that many empty slots every step; a fine one regrows (one copy of the cache)
 * more often: every 64 decode steps is 1/64 of a cache copy per step.
 */
const KV_GROWTH = 64;

/**
 * One layer's K and V on the host, laid out for the graph's past inputs: [K, capacity, hs] per
 * tensor, except 'plain' keys, which are kept transposed [K, hs, capacity]. The buffers are fed
 * as they are, capacity slots long (`StepInputs.feeds` masks the slots past `length`; 'gqa'
 * reads only the first seqlens positions of each head), so a step copies only its own S new
 * positions in; onnxruntime's copy of every input into its heap is the one per-step copy of the
 * cache left.
 */
class HostKv {
  length = 0;
  private capacity = 0;
  private key = new Float32Array(0);
  private value = new Float32Array(0);

  private readonly keyRows: KvRows;
  private readonly valueRows: KvRows;

  constructor(
    private readonly K: number,
    private readonly hs: number,
    private readonly keyTransposed: boolean,
  ) {
    this.keyRows = kvRows(K, hs, keyTransposed);
    this.valueRows = kvRows(K, hs, false);
  }

  /** Makes room for `S` more positions (before a step: the graph reads the buffer as past). */
  reserve(S: number): void {
    const positions = this.length + S;
    if (positions <= this.capacity) return;
    const { K, hs } = this;
    const cap = Math.ceil(positions / KV_GROWTH) * KV_GROWTH;
    const key = new Float32Array(K * cap * hs);
    const value = new Float32Array(K * cap * hs);
    copyPositions(this.keyRows, this.key, this.capacity, key, cap, this.length);
    copyPositions(this.valueRows, this.value, this.capacity, value, cap, this.length);
    this.key = key;
    this.value = value;
    this.capacity = cap;
  }

  /** Appends S positions from new_key/new_value [S, K*hs] at `length` (room reserved beforehand). */
  append(newKey: Float32Array, newValue: Float32Array, S: number): void {
    const { K, hs } = this;
    this.reserve(S);
    const cap = this.capacity;
    for (let s = 0; s < S; s++) {
      const t = this.length + s;
      for (let h = 0; h < K; h++) {
        const src = (s * K + h) * hs;
        this.value.set(newValue.subarray(src, src + hs), (h * cap + t) * hs);
        if (this.keyTransposed) for (let d = 0; d < hs; d++) this.key[(h * hs + d) * cap + t] = newKey[src + d]!;
        else this.key.set(newKey.subarray(src, src + hs), (h * cap + t) * hs);
      }
    }
    this.length += S;
  }

  /** The whole buffers as past tensors' data, `slots` positions each (the first `length` filled). No copy. */
  past(): { key: Float32Array; value: Float32Array; slots: number } {
    return { key: this.key, value: this.value, slots: this.capacity };
  }
}

export interface StepOptions {
  /** Stop at the plan's early exit (draft path) instead of running every kept layer. */
  exit?: boolean;
  /** Run on the graphs even where the decode kernels could take the step (measuring the graph path, warming it up). */
  graphs?: boolean;
  signal?: AbortSignal;
}

/** Bytes of one layer's linear weights, as held (fp32 or compressed). */
function blockBytes(w: PreparedLayer): number {
  return linearBytes(w.qkv) + linearBytes(w.wo) + linearBytes(w.gateUp) + linearBytes(w.down);
}

/**
 * Most bytes of block weights one session is compiled from (PlanRunner.compile): SmolLM2-135M's
 * 425 MB of fp32 blocks become 7 sessions, its q8 blocks 2, the stories models stay one graph.
 */
export const SEGMENT_BYTES = 64 * 2 ** 20;

/** Bytes of a tied fp32 head above which WASM graphs read the embedding table instead of holding a transposed copy. */
const HEAD_COPY_LIMIT = 256 * 2 ** 20;

/**
 * fp32 table bytes from which tokens are looked up on the host (one small read per token from
 * where the weights are stored) rather than by a Gather holding the table: SmolLM2-135M's is
 * 113 MB, a tenth of the loaded model, against well under a millisecond a step; the stories
 * models' tables (under 10 MB) stay in the graph, where a read per step would be felt.
 */
export const HOST_LOOKUP_BYTES = 64 * 2 ** 20;

/**
 * Bytes of weights up to which WASM decode steps run on Whittle's own kernels by default
 * (kernel-decoder.ts): they need a copy of the weights beside onnxruntime's, so 'auto' takes them
 * where that copy is at most this (SmolLM2-135M q8: 134 MB, fp32 from bf16: 269 MB; at q8
 * SmolLM2-360M and Qwen2.5-0.5B fit, Llama-3.2-1B's 1.24 GB does not).
 */
export const KERNEL_COPY_LIMIT = 512 * 2 ** 20;

/**
 * Which kernels run a WASM decode step (one new position on the full path): 'auto' = Whittle's
 * own SIMD kernels (workers/text/kernel-decoder.ts) where the weights are int8, or fp32 from a
 * bf16 checkpoint (each matrix whose values are all bf16 kept as bf16 there: half the bytes, the
 * same values), and their copy is at most KERNEL_COPY_LIMIT bytes, else onnxruntime's graphs;
 * 'kernel' = the kernels wherever they can run (fp32-trained weights too), whatever the copy costs;
 * 'onnxruntime' = never the kernels. The kernels run on WASM only (4-bit, sparse weights and
 * WebGPU keep the graphs; so does a plan whose kernels ran out of memory), which
 * `lm.info.decode.path` reports. Prefill, drafts, verification and dropout runs always use the
 * graphs.
 *
 * @example
 * const lm = await w.text('smollm2-135m', { compress: { linear: 'q8' }, decodeKernel: 'kernel' });
 * console.log(lm.info.decode); // { path: 'kernel', kernelBytes: 145031168 }
 */
export type DecodeKernelChoice = 'auto' | 'kernel' | 'onnxruntime';

/** PlanRunner.compile's size rules, for tests and benchmarks that exercise them at small sizes. */
export interface CompileLimits {
  /** Most bytes of block weights per session (default SEGMENT_BYTES). */
  segmentBytes?: number;
  /** fp32 table bytes from which tokens are looked up on the host (default HOST_LOOKUP_BYTES). */
  hostLookupBytes?: number;
  /** Which kernels run decode steps on WASM (default 'auto'). */
  decodeKernel?: DecodeKernelChoice;
}

/** RoPE cos / sin tables [maxSeqLen, headSize / 2] (prepare.ts). */
interface RopeTables {
  cos: Float32Array;
  sin: Float32Array;
}

/**
 * A decoder on Whittle's kernels for `plan`, or null where decode steps stay on the graphs: not
 * WASM, asked not to, no WebAssembly SIMD, a head read from the embedding table, weights the
 * kernels do not read (judged on the plan's first layer; compile checks the others and the head
 * as they come), under 'auto' fp32 weights with no matrix in bf16 or a copy larger than
 * KERNEL_COPY_LIMIT, or no memory for the kernels' instance.
 */
function kernelDecoderFor(backend: Backend, choice: DecodeKernelChoice, source: LayerwiseWeights, plan: LlamaPlan, first: PreparedLayer, sharesTable: boolean, threads: number): KernelDecoder | null {
  if (choice === 'onnxruntime' || backend !== 'wasm' || sharesTable || !kernelReadsLayer(first) || source.headSize % 4 !== 0 || !kernelsSupported()) return null;
  // Sized from the config (a width-pruned layer is narrower: this over-counts it, never under).
  const c = source.config;
  const hs = source.headSize;
  const bytesPerWeight = kernelBytesPerWeight(first);
  // int8's padding (16 inputs) is the widest of the three layouts: never an under-count.
  const weights = (K: number, N: number) => {
    const { Kpad, Npad } = int8Padding(K, N);
    return Kpad * Npad * bytesPerWeight;
  };
  const perLayer = weights(c.dim, (c.nHeads + 2 * c.nKvHeads) * hs) + weights(c.nHeads * hs, c.dim) + weights(c.dim, 2 * c.hiddenDim) + weights(c.hiddenDim, c.dim);
  // An fp32 head is taken to be bf16 when fp32 layers are (a tied one is the table, widened like them), else fp32.
  const bf16Layers = bytesPerWeight > 1 && bytesPerWeight < 4;
  const headBytes = c.vocabSize * c.dim * (source.headIsFp32 ? (bf16Layers ? 2 : 4) : 1);
  // 'auto' wants the kernels to read fewer bytes than onnxruntime: fp32 layers with nothing in bf16 stay on the graphs.
  if (choice === 'auto' && (bytesPerWeight >= 4 || perLayer * plan.layers.length + headBytes > KERNEL_COPY_LIMIT)) return null;
  try {
    // A shared memory only where a helper thread may run (onnxruntime was given threads too).
    return new KernelDecoder(KernelHeap.create({ shared: threads > 1 }), c, hs, plan.layers, { cos: source.ropeCos, sin: source.ropeSin });
  } catch {
    return null; // no memory for the kernels' instance: the graphs decode
  }
}

export class PlanRunner {
  /** WebGPU: per-layer present tensors (GPU buffers) fed back as past. */
  private caches = new Map<number, { key: Ort.Tensor; value: Ort.Tensor; length: number }>();
  /** WASM: per-layer host caches. */
  private readonly host = new Map<number, HostKv>();
  /** Position and mask feeds (the mask's buffer reused across steps). */
  private readonly inputs: StepInputs;
  /**
   * Per segment, what `run` fetches: on WASM everything but present_* (the host keeps the cache
   * from new_*); on WebGPU everything but new_* (present_* stay in GPU buffers, and fetching
   * new_* would read them back to the CPU every step for nothing).
   */
  private readonly fetches: string[][];
  /** Compiled with SegmentOptions.dropout: feeds `position_ids` and `logit_rows`, takes `rows` runs. */
  readonly dropoutVariant: boolean;
  /** Positions fed so far (the next token's position). */
  position = 0;
  /** The dropout variant's scoring inputs for runs that score nothing (the graph's plain branch reads none of them): made once. */
  private readonly unscored: Record<string, Ort.Tensor>;
  /**
   * Most positions one `session.run` takes in `step` (a longer prompt runs as consecutive
   * chunks). Bounds what a run allocates for S positions: attention scores [H, S, T], the mask
   * [S, T] and every activation [S, hidden] (a 2048-token prompt in one pass at Llama-3.2-1B's
   * 32 heads: 512 MiB of scores [32, 2048, 2048] plus as much again for their softmax). At
   * SmolLM2-135M's shape chunks of 32–128 also prefill 1.1x faster than one 512-position run
   * (models/llama/README.md).
   */
  prefillChunk = PREFILL_CHUNK;
  /** Decode steps the kernels took since compile (`kernelSteps`). */
  private kernelStepCount = 0;
  /** Step times with and without the kernels' helper thread, to use it only while it pays. */
  private readonly helperTimes = new HelperTimes();
  /** When the graphs last ran (performance.now()): kernelStep keeps the helper thread off shortly after. */
  private lastGraphRun = -Infinity;

  private constructor(
    private readonly ort: OrtModule,
    private readonly backend: Backend,
    // Only its shape: holding the arrays would keep a copy of every weight alive beside the sessions.
    // `kvHeads`: each model layer's KV heads (fewer than the config's after width pruning).
    private readonly weights: Pick<PreparedWeights, 'config' | 'headSize'> & { kvHeads: number[] },
    readonly plan: LlamaPlan,
    readonly attention: AttentionKind,
    private readonly segments: CompiledSegment[],
    /** Looks tokens up on the host when the first segment takes `inputs_embeds` (compile's HOST_LOOKUP_BYTES and split rules). */
    private embeddingRows?: (ids: readonly number[]) => Promise<Float32Array>,
    /** The RoPE tables, when the segments take each run's rows as inputs (compile's split plans). */
    private readonly rope?: RopeTables,
    /** Decode steps on Whittle's kernels (WASM, int8 weights), with the embedding table when tokens are not looked up on the host. */
    private decoder: { kernels: KernelDecoder; table: Float32Array | null } | null = null,
  ) {
    const { nKvHeads, nHeads } = weights.config;
    this.inputs = new StepInputs(ort, attention, nHeads / nKvHeads);
    if (backend === 'wasm') {
      for (const seg of segments) for (const l of seg.layers) this.host.set(l, new HostKv(weights.kvHeads[l]!, weights.headSize, attention === 'plain'));
    }
    const skip = backend === 'wasm' ? 'present_' : 'new_';
    this.fetches = segments.map((seg) => seg.session.outputNames.filter((n) => !n.startsWith(skip)));
    this.dropoutVariant = segments.some((s) => s.session.inputNames.includes('logit_rows'));
    this.unscored = {
      score: new ort.Tensor('bool', Uint8Array.of(0), []),
      score_sizes: new ort.Tensor('int64', BigInt64Array.of(1n, 1n, 0n, 1n), [4]),
      scored_in: new ort.Tensor('float32', new Float32Array(0), [1, 0, weights.config.dim]),
      mass_in: new ort.Tensor('float32', new Float32Array(1), [1]),
      scored_weights: new ort.Tensor('float32', new Float32Array(1), [1, 1, 1]),
    };
    this.reset();
  }

  /**
   * Builds and loads one session per segment of `plan`, one segment at a time: a segment's
   * arrays are asked of `weights` just before its graph is built and dropped once onnxruntime
   * holds them, so with LayerwiseWeights (prepare.ts) JS never holds more than one segment. Runs
   * of more than `limits.segmentBytes` of block weights (default SEGMENT_BYTES) are split into
   * chunks of at most that (splitSegments, plan.ts): whole-model sessions peak at twice the
   * model while they are created.
   */
  static async compile(ort: OrtModule, backend: Backend, weights: PreparedWeights | LayerwiseWeights, plan: LlamaPlan, attention: AttentionKind, graphOptions?: SegmentOptions, limits: CompileLimits = {}): Promise<PlanRunner> {
    const { segmentBytes, hostLookupBytes = HOST_LOOKUP_BYTES, decodeKernel = 'auto' } = limits;
    // Default: the head is a MatMul on its transposed copy. Reading a tied head from the
    // embedding table (`headFromEmbedding`, WASM only) saves 113 MB at SmolLM2-135M but measured
    // 1.00-1.06x slower per decode step (models/llama/README.md), so below HEAD_COPY_LIMIT it is
    // opt-in. Above it the copy costs more than 5% is worth: 545 MB at Qwen2.5-0.5B's vocabulary,
    // 1.05 GB at Llama-3.2-1B's, a quarter of the 4 GiB a WASM heap can hold.
    const source = 'layer' in weights ? weights : heldLayerwise(weights);
    const { config: c } = source;
    const bigTiedHead = backend === 'wasm' && c.tiedEmbeddings && source.headIsFp32 && c.vocabSize * c.dim * 4 > HEAD_COPY_LIMIT;
    const options = { ...(bigTiedHead ? { headFromEmbedding: true } : {}), ...graphOptions };
    // The head copy is never built when the graphs read the embedding table instead.
    const sharesTable = options.headFromEmbedding === true && c.tiedEmbeddings && source.headIsFp32;
    const compiled: (CompiledSegment | undefined)[] = [];
    const kvHeads = Array.from({ length: c.nLayers }, () => c.nKvHeads);
    let embeddingRows: ((ids: readonly number[]) => Promise<Float32Array>) | undefined;
    let rope: RopeTables | undefined;
    let decoder: KernelDecoder | null = null;
    let decoderTable: Float32Array | null = null;
    try {
      const planned = planSegments(plan, c.nLayers);
      // Block bytes per layer, measured on the first kept layer (blocks of one plan share a form;
      // width-pruned layers are narrower, so this over-counts them: more chunks, never fewer).
      const first = await source.layer(plan.layers[0]!);
      const perLayer = blockBytes(first);
      decoder = kernelDecoderFor(backend, decodeKernel, source, plan, first, sharesTable, ort.env.wasm.numThreads ?? 1);
      // A head that reads the embedding table shares that initializer with the Gather only
      // inside one session: split, each would hold its own copy (1.05 GB at Llama-3.2-1B), more
      // than splitting saves. Such plans split only where the source can read token rows itself.
      const lookup = sharesTable || c.vocabSize * c.dim * 4 >= hostLookupBytes ? source.embeddingRows : undefined;
      const budget = segmentBytes ?? SEGMENT_BYTES;
      const split = (!sharesTable || lookup) && perLayer * plan.layers.length > budget ? splitSegments(planned, () => perLayer, budget) : planned;
      // Every session would hold its own RoPE tables (33.5 MB at Llama-3.2-1B's 131072
      // positions): a split plan feeds each run its rows instead, from the one copy kept here.
      if (split.length > 1) rope = { cos: source.ropeCos, sin: source.ropeSin };
      // The host reads each token's row from storage instead: always for a big table no head
      // shares, and for a shared one once the plan is split.
      if (lookup && (!sharesTable || split.length > planned.length)) embeddingRows = lookup;
      // What each segment needs besides its blocks: the table (a Gather, or a head reading it)
      // and the head copy. Those segments compile first, while the heap is small, so the table
      // (1.05 GB fp32 at Llama-3.2-1B) is in JS beside little and dropped before the blocks come.
      const needsTable = (seg: Segment) => (seg.embed && !embeddingRows) || (seg.head !== null && sharesTable);
      const needsHead = (seg: Segment) => seg.head !== null && !sharesTable;
      // A tied head copy is made from the table too, unless the source builds it from the stored rows.
      const usesTable = (seg: Segment) => needsTable(seg) || (needsHead(seg) && c.tiedEmbeddings && source.headReadsTable);
      const compilesEarly = (seg: Segment) => Number(needsTable(seg) || needsHead(seg));
      let tableUsers = split.filter(usesTable).length;
      let table: Float32Array | null = null;
      const order = split.map((_, i) => i).sort((a, b) => compilesEarly(split[b]!) - compilesEarly(split[a]!));
      for (const i of order) {
        const seg = split[i]!;
        // Sparse on purpose: the graph reads only this segment's layers.
        const layers: PreparedLayer[] = [];
        for (const l of seg.layers) layers[l] = l === plan.layers[0] ? first : await source.layer(l);
        for (const l of seg.layers) kvHeads[l] = layerWidth(c, layers[l]!).nKvHeads;
        // The table is read once for every segment that uses it, and let go after the last.
        if (usesTable(seg)) table ??= await source.embedding();
        const embedding = needsTable(seg) ? table! : new Float32Array(0);
        const head = needsHead(seg) ? await source.head(table ?? undefined) : new Float32Array(0);
        // The decode kernels take their copy before onnxruntime's session lets the arrays go.
        if (decoder && seg.layers.every((l) => kernelReadsLayer(layers[l]!)) && (seg.head !== 'final' || kernelReadsHead(head))) {
          for (const l of seg.layers) decoder.addLayer(l, layers[l]!);
          if (seg.head === 'final') decoder.setHead(source.finalNorm, head);
          if (seg.embed && !embeddingRows) decoderTable = table!.slice();
        } else decoder = null;
        // The table's last user releases it below, once its session holds what it needs.
        const tableDone = usesTable(seg) && --tableUsers === 0 ? table : null;
        if (tableDone) table = null;
        const graph = buildSegment({ ...source, embedding, layers, head }, seg, attention, 'runner', { ...options, ...(embeddingRows && seg.embed ? { embeddingsIn: true } : {}), ...(rope ? { ropeIn: true } : {}) });
        // On WebGPU the caches and the hidden state between segments stay in GPU buffers: each
        // step feeds the previous step's present_* back without a round trip through JS.
        // (Not exercised by the Node tests, which run WASM.)
        const onDevice: Record<string, 'gpu-buffer'> = {};
        if (backend === 'webgpu') {
          for (const l of seg.layers) onDevice[`present_key.${l}`] = onDevice[`present_value.${l}`] = 'gpu-buffer';
          if (seg.hiddenOut) onDevice.hidden_out = 'gpu-buffer';
        }
        const session = await createSession(ort, graph.built, backend, backend === 'webgpu' ? { preferredOutputLocation: onDevice } : {});
        compiled[i] = { session, layers: seg.layers, head: seg.head, nodeCount: graph.nodeCount };
        // onnxruntime holds its own copy now: what the source made for this compile alone is
        // released at once rather than at V8's next collection (core/release.ts).
        if (source.fresh.layers) for (const l of seg.layers) releaseAllIn(layers[l]);
        if (source.fresh.head) releaseAllIn(head);
        if (source.fresh.table) releaseNow(tableDone);
      }
    } catch (err) {
      await Promise.all(compiled.map((s) => s?.session.release()));
      throw err;
    }
    const segments = compiled as CompiledSegment[];
    const kernels = decoder?.complete ? { kernels: decoder, table: embeddingRows ? null : decoderTable } : null;
    if (kernels && (ort.env.wasm.numThreads ?? 1) > 1) {
      const threads = await KernelThreads.start(kernels.kernels.heap);
      if (threads) kernels.kernels.useThreads(threads);
    }
    const runner = new PlanRunner(ort, backend, { config: c, headSize: source.headSize, kvHeads }, plan, attention, segments, embeddingRows, rope, kernels);
    // One throwaway step so onnxruntime's first-run allocations (and, on WebGPU, shader
    // compilation) happen at load time instead of inflating the first token's latency, and a
    // session that fails on its first run fails the compile; then one on the decode kernels.
    try {
      await runner.step([c.bosTokenId], { graphs: true });
      if (runner.decoder) {
        runner.reset();
        await runner.step([c.bosTokenId]);
      }
    } catch (err) {
      // Nobody gets this runner: its sessions and the kernels' helper thread go with the error.
      await runner.release().catch(() => {});
      throw err;
    }
    runner.reset();
    runner.kernelStepCount = 0;
    return runner;
  }

  /**
   * Reads token rows from `rows` from now on, where this runner looks tokens up on the host:
   * another reader of the same table (the same values), so that whatever the compile's reader
   * kept alive (a held table, and through its closure the weights beside it) can go.
   */
  readRowsFrom(rows: (ids: readonly number[]) => Promise<Float32Array>): void {
    if (this.embeddingRows) this.embeddingRows = rows;
  }

  /** Positions the model's context (and RoPE tables) hold. */
  get maxPositions(): number {
    return this.weights.config.maxSeqLen;
  }

  /** Logits per position. */
  get vocabSize(): number {
    return this.weights.config.vocabSize;
  }

  /** Width of the hidden state (and of `RowsResult.normed`'s rows). */
  get hiddenSize(): number {
    return this.weights.config.dim;
  }

  /** session.run calls of one full-path step (segments in the plan). */
  get runsPerStep(): number {
    return this.segments.length;
  }

  /** Graph nodes per segment (what onnxruntime-web pays per step, before its own fusions). */
  get nodeCounts(): number[] {
    return this.segments.map((s) => s.nodeCount);
  }

  /** Empties every KV cache (disposing the old tensors); the next step is position 0. */
  reset(): void {
    const { kvHeads } = this.weights;
    const hs = this.weights.headSize;
    for (const c of this.caches.values()) {
      c.key.dispose();
      c.value.dispose();
    }
    this.caches.clear();
    this.position = 0;
    for (const kv of this.host.values()) kv.length = 0;
    this.decoder?.kernels.reset();
    if (this.backend === 'wasm') return;
    for (const seg of this.segments) {
      for (const l of seg.layers) {
        this.caches.set(l, {
          key: new this.ort.Tensor('float32', new Float32Array(0), kvCacheShape(this.attention, 'key', kvHeads[l]!, hs, 0)),
          value: new this.ort.Tensor('float32', new Float32Array(0), kvCacheShape(this.attention, 'value', kvHeads[l]!, hs, 0)),
          length: 0,
        });
      }
    }
    this.position = 0;
  }

  /**
   * Feeds `tokens` at positions `position ..`, appends them to the KV caches and returns the
   * logits [vocab] of the last one. Prefill is one call with the whole prompt (run in chunks of
   * `prefillChunk` positions); decode, one token.
   */
  async step(tokens: readonly number[], options: StepOptions = {}): Promise<Float32Array> {
    this.checkTokens(tokens);
    const exitIndex = options.exit ? this.segments.findIndex((s) => s.head === 'exit') : -1;
    const last = exitIndex >= 0 ? exitIndex : this.segments.length - 1;
    const end = this.position + tokens.length;
    // Checked before the first chunk runs, so a too-long prompt leaves the caches untouched.
    if (end > this.weights.config.maxSeqLen) {
      throw new WhittleError('INVALID_ARGUMENT', `${end} positions exceed the model's context of ${this.weights.config.maxSeqLen}`, { positions: end, maxSeqLen: this.weights.config.maxSeqLen });
    }
    if (tokens.length === 1 && !options.exit && !options.graphs && this.decoderReady()) {
      const logits = await this.kernelStep(tokens[0]!, options.signal);
      if (logits) return logits;
    }
    const chunk = Math.max(1, Math.floor(this.prefillChunk));
    let logits: Float32Array = new Float32Array(0);
    // Each chunk attends to the cache the previous chunks appended (one append of S positions
    // per layer, no re-copy of what is cached), so the result equals one pass over all tokens;
    // only the last chunk's logits are kept.
    for (let start = 0; start < tokens.length; start += chunk) {
      const part = tokens.slice(start, start + chunk);
      ({ logits } = await this.runRange(0, last, { tokens: part }, this.position, part.length, options.signal, false));
      this.position += part.length;
    }
    const vocab = this.weights.config.vocabSize;
    return logits.subarray(logits.length - vocab); // the last position (segments with allLogits return every one)
  }

  /** Which kernels take this runner's decode steps (see DecodeKernelChoice). */
  get decodePath(): 'kernel' | 'onnxruntime' {
    return this.decoder ? 'kernel' : 'onnxruntime';
  }

  /** Bytes of the decode kernels' memory (their copy of the weights, caches, scratch); 0 without them. */
  get kernelBytes(): number {
    return this.decoder ? this.decoder.kernels.reservedBytes + (this.decoder.table?.byteLength ?? 0) : 0;
  }

  /** Whether the kernels can take a full-path step now: every kept layer caches exactly `position` (not while drafts are ahead). */
  private decoderReady(): boolean {
    const d = this.decoder?.kernels;
    return d !== undefined && this.plan.layers.every((l) => d.lengthOf(l) === this.position && this.host.get(l)!.length === this.position);
  }

  /**
   * One decode step on the kernels; the host caches get the new K/V too, so the graphs can take
   * the next step. Null when the kernels ran out of memory (growing their caches, before any
   * cache changed): they are dropped and the graphs take this step and every later one.
   */
  private async kernelStep(token: number, signal: AbortSignal | undefined): Promise<Float32Array | null> {
    throwIfAborted(signal);
    const { kernels, table } = this.decoder!;
    const dim = this.weights.config.dim;
    const row = table ? table.subarray(token * dim, (token + 1) * dim) : await this.embeddingRows!([token]);
    throwIfAborted(signal);
    let logits: Float32Array;
    const mode = this.helperMode(kernels);
    kernels.helperOn = mode === 'on';
    const started = performance.now();
    try {
      logits = kernels.step(row, this.position, (l, key, value) => this.host.get(l)!.append(key, value, 1));
      this.helperTimes.record(mode, performance.now() - started);
    } catch (err) {
      if (!(err instanceof WhittleError && err.code === 'OUT_OF_MEMORY')) throw err;
      this.dropDecoder();
      return null;
    }
    this.position += 1;
    this.kernelStepCount += 1;
    return logits;
  }

  /** Decode steps the kernels took since compile (tests and benchmarks check which path ran). */
  get kernelSteps(): number {
    return this.kernelStepCount;
  }

  /**
   * Whether this kernel step uses the helper thread: never without one; not while onnxruntime's
   * pool threads still spin after a graph run (~0.3 s measured in Node: a helper then makes three
   * busy threads on two cores); otherwise whichever mode's recent steps were faster, trying the
   * other every HELPER_PROBE_EVERY steps. A busy machine (another tab, a background job) can make
   * the helper's half arrive late and a step several times slower (one Chromium round measured
   * 11 tok/s against 50): the timing finds that and turns it off.
   */
  private helperMode(kernels: KernelDecoder): 'on' | 'off' | 'near-graph-run' {
    if (kernels.threadCount < 2) return 'off';
    if (performance.now() - this.lastGraphRun < ORT_SPIN_MS) return 'near-graph-run';
    return this.helperTimes.choose();
  }

  /** Gives up the decode kernels (out of memory, or the runner's release): the graphs take every step from now on. */
  private dropDecoder(): void {
    this.decoder?.kernels.dispose();
    this.decoder = null;
  }

  /** Threads the decode kernels' products run on (1 or 2); 0 without the kernels. */
  get kernelThreads(): number {
    return this.decoder?.kernels.threadCount ?? 0;
  }

  /**
   * One run of the dropout variant (`RowsRun`) through the whole plan: `tokens` are the S new
   * rows (at most `prefillChunk`; the caller chunks). Returns the logits of `run.logitRows`.
   */
  async rows(tokens: readonly number[], run: RowsRun, signal?: AbortSignal): Promise<Float32Array> {
    if (!this.dropoutVariant) throw new WhittleError('INTERNAL', 'rows() needs graphs compiled with the dropout variant');
    const from = run.appendFrom ?? 0;
    if (from !== 0 && !(run.append && this.canAppendRows && Number.isInteger(from) && from > 0 && from < tokens.length)) {
      throw new WhittleError('INTERNAL', `cannot cache rows ${from}.. of ${tokens.length} here`);
    }
    this.checkTokens(tokens);
    if (run.positions.length !== tokens.length) throw new WhittleError('INTERNAL', `${tokens.length} rows but ${run.positions.length} positions`);
    const { logits } = await this.runRange(0, this.segments.length - 1, { tokens }, this.position, tokens.length, signal, false, run);
    if (run.append) this.position += tokens.length - from;
    return logits;
  }

  /**
   * A `rows` run that also reduces context uncertainty in the graph (`run.scoring`): the logits
   * of `run.logitRows`, the marked rows' normed states and the scored rows' sums, no n x vocab.
   */
  async scoreRows(tokens: readonly number[], run: RowsRun & { scoring: RowsScoring }, signal?: AbortSignal): Promise<RowsResult> {
    if (!this.dropoutVariant) throw new WhittleError('INTERNAL', 'scoreRows() needs graphs compiled with the dropout variant');
    if (run.appendFrom !== undefined) throw new WhittleError('INTERNAL', 'a scoring run caches all its rows or none');
    this.checkTokens(tokens);
    if (run.positions.length !== tokens.length) throw new WhittleError('INTERNAL', `${tokens.length} rows but ${run.positions.length} positions`);
    const { logits, extra } = await this.runRange(0, this.segments.length - 1, { tokens }, this.position, tokens.length, signal, false, run);
    if (run.append) this.position += tokens.length;
    const dim = this.weights.config.dim;
    const data = <T extends Float32Array | BigInt64Array>(name: string, empty: T) => (extra?.[name]?.data as T | undefined) ?? empty;
    const L = run.logitRows.length;
    return {
      logits,
      normed: data('final_normed', new Float32Array(0)).subarray(L * dim),
      scored: { plogp: data('scored_plogp', new Float32Array(0)), cross: data('scored_cross', new Float32Array(0)), mass: data('scored_mass', new Float32Array(0)), topIds: data('scored_top_ids', new BigInt64Array(0)) },
    };
  }

  /** Whether `rows` may cache only the last rows of a run (`RowsRun.appendFrom`): the host cache (WASM). */
  get canAppendRows(): boolean {
    return this.backend === 'wasm';
  }

  /** Index of the exit segment, or -1 when the plan has none. */
  private get exitSegment(): number {
    return this.segments.findIndex((s) => s.head === 'exit');
  }

  /** How many positions the layers after the exit have cached (they lag behind while drafting). */
  get latePosition(): number {
    const seg = this.segments[this.exitSegment + 1];
    return seg ? this.cachedLength(seg.layers[0]!) : this.position;
  }

  private cachedLength(layer: number): number {
    return this.backend === 'wasm' ? this.host.get(layer)!.length : this.caches.get(layer)!.length;
  }

  /**
   * Self-speculative decoding, draft side: feeds one token through the segments up to the early
   * exit only, at `position`, and returns the exit head's logits [vocab] and the hidden state
   * [dim] at the exit (what the later layers will be verified on, so they never re-run the early ones).
   */
  async draftStep(token: number, signal?: AbortSignal): Promise<{ logits: Float32Array; hidden: Float32Array }> {
    const exit = this.exitSegment;
    if (exit < 0) throw new WhittleError('INVALID_ARGUMENT', 'drafting needs a plan with an early exit');
    this.checkTokens([token]);
    const { logits, hidden } = await this.runRange(0, exit, { tokens: [token] }, this.position, 1, signal, true);
    this.position += 1;
    return { logits, hidden: hidden! };
  }

  /**
   * Self-speculative decoding, verify side: runs the layers after the exit over `S` hidden states
   * [S * dim] the drafts produced (positions `latePosition ..`) and returns the final logits of
   * every one [S * vocab].
   */
  async verify(hidden: Float32Array, S: number, signal?: AbortSignal): Promise<Float32Array> {
    const exit = this.exitSegment;
    if (exit < 0) throw new WhittleError('INVALID_ARGUMENT', 'verification needs a plan with an early exit');
    const hiddenIn = new this.ort.Tensor('float32', hidden, [1, S, this.weights.config.dim]);
    const { logits } = await this.runRange(exit + 1, this.segments.length - 1, { hidden: hiddenIn }, this.latePosition, S, signal, false);
    return logits;
  }

  /**
   * Forgets every cached position at or after `length` (rejected drafts); `position` follows.
   * WASM: a length change. WebGPU: reads the caches back to the CPU (`getData`), so a truncation
   * is a download and the next run's upload; a GPU-side slice would be the next step.
   */
  async truncate(length: number): Promise<void> {
    if (this.backend === 'wasm') {
      for (const kv of this.host.values()) kv.length = Math.min(kv.length, length);
      this.decoder?.kernels.truncate(length);
      this.position = Math.min(this.position, length);
      return;
    }
    const hs = this.weights.headSize;
    for (const [layer, cache] of this.caches) {
      if (cache.length <= length) continue;
      const nKvHeads = this.weights.kvHeads[layer]!;
      const cut = async (t: Ort.Tensor, which: 'key' | 'value') => {
        const data = (await t.getData()) as Float32Array;
        const shape = kvCacheShape(this.attention, which, nKvHeads, hs, length);
        const out = new Float32Array(shape.reduce((a, b) => a * b, 1));
        copyPositions(kvRows(nKvHeads, hs, this.attention === 'plain' && which === 'key'), data, cache.length, out, length, length);
        t.dispose();
        return new this.ort.Tensor('float32', out, shape);
      };
      this.caches.set(layer, { key: await cut(cache.key, 'key'), value: await cut(cache.value, 'value'), length });
    }
    this.position = Math.min(this.position, length);
  }

  private checkTokens(tokens: readonly number[]): void {
    const c = this.weights.config;
    if (tokens.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'step needs at least one token');
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= c.vocabSize) throw new WhittleError('INVALID_ARGUMENT', `token ${t} is outside the vocabulary (${c.vocabSize})`);
    }
  }

  /**
   * Runs segments first..last for S new positions starting at P. The first segment gets token
   * ids or a hidden state; returns the last segment's logits (and its hidden_out, read back,
   * when `wantHidden`). Caches of the layers run grow from P to P + S.
   */
  private async runRange(first: number, last: number, input: { tokens?: readonly number[]; hidden?: Ort.Tensor }, P: number, S: number, signal: AbortSignal | undefined, wantHidden: boolean, rows?: RowsRun): Promise<{ logits: Float32Array; hidden?: Float32Array; extra?: Record<string, Ort.Tensor> }> {
    const c = this.weights.config;
    const T = P + S;
    const positions = rows?.positions ?? Array.from({ length: S }, (_, s) => P + s);
    // RoPE's tables end at maxSeqLen; scratch rows share positions, so they only bound those.
    const lastPosition = rows ? Math.max(...positions) : T - 1;
    if (lastPosition >= c.maxSeqLen) {
      throw new WhittleError('INVALID_ARGUMENT', `${lastPosition + 1} positions exceed the model's context of ${c.maxSeqLen}`, { positions: lastPosition + 1, maxSeqLen: c.maxSeqLen });
    }
    const append = rows?.append ?? true;
    const appendFrom = rows?.appendFrom ?? 0;
    // The dropout variant's own inputs; its graphs otherwise compute what the plain ones do.
    const variantFeeds = (slots: number): Record<string, Ort.Tensor> => {
      if (!this.dropoutVariant) return {};
      const logitRows = rows?.logitRows ?? [S - 1];
      const scoring = rows?.scoring;
      const marked = scoring?.marked ?? [];
      const headRows = logitRows.length + (scoring?.scoreOwn ? marked.length : 0);
      const fed = (scoring?.scoredIn.length ?? 0) / c.dim;
      const N = headRows - logitRows.length + fed;
      const out: Record<string, Ort.Tensor> = {
        position_ids: new this.ort.Tensor('int64', BigInt64Array.from(positions, (p) => BigInt(p)), [1, S]),
        // The graph gathers the logit rows, then the marked ones (graph.ts, SegmentOptions.dropout).
        logit_rows: new this.ort.Tensor('int64', BigInt64Array.from([...logitRows, ...marked], (r) => BigInt(r)), [logitRows.length + marked.length]),
        // Runs without `scoring` take the graph's plain branch (the head over the logit rows alone),
        // which reads none of the rest: the same placeholder tensors every time.
        ...(scoring
          ? {
              score: new this.ort.Tensor('bool', Uint8Array.of(1), []),
              score_sizes: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(headRows), BigInt(logitRows.length), BigInt(N), BigInt(scoring.topK)), [4]),
              scored_in: new this.ort.Tensor('float32', scoring.scoredIn, [1, fed, c.dim]),
              mass_in: scoring.massIn ? new this.ort.Tensor('float32', scoring.massIn, [c.vocabSize]) : new this.ort.Tensor('float32', new Float32Array(1), [1]),
              // 1 per scored row, 0 for the graph's padding row (graph.ts emitScoredHead).
              scored_weights: new this.ort.Tensor('float32', new Float32Array(N + 1).fill(1, 0, N), [1, 1, N + 1]),
            }
          : this.unscored),
      };
      const fill = rows?.mask;
      if (fill) out.attention_mask = this.inputs.rowMask(S, slots + S, (s, row) => fill(s, row, P, slots));
      return out;
    };
    let feeds = { ...this.inputs.feeds(P, S), ...variantFeeds(P) };
    if (this.rope) {
      const half = this.weights.headSize / 2;
      feeds.rope_cos = new this.ort.Tensor('float32', gatherRows(this.rope.cos, half, positions), [S, half]);
      feeds.rope_sin = new this.ort.Tensor('float32', gatherRows(this.rope.sin, half, positions), [S, half]);
    }
    if (input.tokens && this.embeddingRows) feeds.inputs_embeds = new this.ort.Tensor('float32', await this.embeddingRows(input.tokens), [1, S, c.dim]);
    else if (input.tokens) feeds.input_ids = new this.ort.Tensor('int64', BigInt64Array.from(input.tokens, (t) => BigInt(t)), [1, S]);
    if (input.hidden) feeds.hidden_in = input.hidden;

    let logits: Float32Array | null = null;
    let hidden: Float32Array | undefined;
    let extra: Record<string, Ort.Tensor> | undefined;
    const wanted = scoringFetches(rows?.scoring, c.dim);
    const wasm = this.backend === 'wasm';
    const hs = this.weights.headSize;
    // True while feeds.hidden_in is a previous segment's hidden_out (a GPU buffer on WebGPU) that
    // no run has consumed yet: an abort or a failure before the next run must release it, or each
    // abort between the two segments of an early-exit plan leaks one buffer.
    let ownsHidden = false;
    try {
      for (let i = first; i <= last; i++) {
        throwIfAborted(signal);
        const seg = this.segments[i]!;
        for (const l of seg.layers) {
          const length = this.cachedLength(l);
          if (length !== P) {
            throw new WhittleError('INVALID_ARGUMENT', `layer ${l} caches ${length} positions but this step starts at ${P} (early-exit steps do not fill later layers; reset first)`);
          }
        }
        if (wasm) {
          // The layers of one segment always grow together, so they share a slot count; segments
          // may not (drafting fills the early ones alone), hence the mask per segment.
          let slots = -1;
          for (const l of seg.layers) {
            const kv = this.host.get(l)!;
            kv.reserve(S);
            const past = kv.past();
            if (slots >= 0 && past.slots !== slots) throw new WhittleError('INTERNAL', `layer ${l} holds ${past.slots} slots, its segment ${slots}`);
            slots = past.slots;
            const K = this.weights.kvHeads[l]!;
            feeds[`past_key.${l}`] = new this.ort.Tensor('float32', past.key, kvCacheShape(this.attention, 'key', K, hs, slots));
            feeds[`past_value.${l}`] = new this.ort.Tensor('float32', past.value, kvCacheShape(this.attention, 'value', K, hs, slots));
          }
          if (slots >= 0) feeds = { ...feeds, ...this.inputs.feeds(P, S, slots), ...variantFeeds(slots) };
        } else {
          for (const l of seg.layers) {
            const cache = this.caches.get(l)!;
            feeds[`past_key.${l}`] = cache.key;
            feeds[`past_value.${l}`] = cache.value;
          }
        }
        const inputs: Record<string, Ort.Tensor> = {};
        for (const name of seg.session.inputNames) inputs[name] = feeds[name]!;
        // Scratch rows (dropout members) fetch no cache output: the caches stay as they were.
        // The uncertainty outputs only when the run scores: otherwise each would be one more
        // array onnxruntime-web allocates per step (see HostKv) for an empty tensor.
        const fetches = this.fetches[i]!.filter((n) => (append || !(n.startsWith('new_') || n.startsWith('present_'))) && (!SCORING_OUTPUTS.includes(n) || wanted.has(n)));
        const out = await seg.session.run(inputs, fetches);
        if (ownsHidden) feeds.hidden_in?.dispose(); // the previous segment's hidden_out, now consumed
        ownsHidden = false;
        for (const l of append ? seg.layers : []) {
          const newKey = out[`new_key.${l}`];
          const newValue = out[`new_value.${l}`];
          const rowWidth = this.weights.kvHeads[l]! * hs; // new_key/new_value values per row (this block's own KV heads)
          if (wasm) {
            const key = (newKey!.data as Float32Array).subarray(appendFrom * rowWidth);
            const value = (newValue!.data as Float32Array).subarray(appendFrom * rowWidth);
            this.host.get(l)!.append(key, value, S - appendFrom);
            try {
              this.decoder?.kernels.append(l, key, value, S - appendFrom);
            } catch (err) {
              // The kernels' cache could not grow: the graphs, which just ran fine, go on alone.
              if (!(err instanceof WhittleError && err.code === 'OUT_OF_MEMORY')) throw err;
              this.dropDecoder();
            }
          }
          else {
            const cache = this.caches.get(l)!;
            cache.key.dispose();
            cache.value.dispose();
            this.caches.set(l, { key: out[`present_key.${l}`]!, value: out[`present_value.${l}`]!, length: T });
          }
          newKey?.dispose();
          newValue?.dispose();
        }
        if (out.hidden_out) {
          if (i < last) {
            feeds.hidden_in = out.hidden_out;
            ownsHidden = true;
          } else {
            if (wantHidden) hidden = (await out.hidden_out.getData()) as Float32Array;
            out.hidden_out.dispose(); // an early-exit step: no later segment reads it
          }
        }
        // onnxruntime-web hands every CPU output back in a typed array of its own: no copy needed.
        if (i === last) {
          logits = out.logits!.data as Float32Array;
          if (wanted.size > 0) extra = Object.fromEntries([...wanted].map((n) => [n, out[n]!]));
        } else out.logits?.dispose();
      }
    } catch (err) {
      if (ownsHidden) feeds.hidden_in?.dispose();
      throw err;
    } finally {
      this.lastGraphRun = performance.now();
    }
    return { logits: logits!, hidden, ...(extra ? { extra } : {}) };
  }

  /** Releases the sessions and caches; the runner is unusable afterwards. */
  async release(): Promise<void> {
    for (const c of this.caches.values()) {
      c.key.dispose();
      c.value.dispose();
    }
    this.caches.clear();
    this.host.clear();
    this.dropDecoder();
    await Promise.all(this.segments.map((s) => s.session.release()));
  }
}
