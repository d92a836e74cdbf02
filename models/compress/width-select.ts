/**
 * Which KV groups and FFN channels each block keeps, from per-channel scores (width-scores.ts)
 * and a ratio: the fraction of the scored blocks' linear parameters (Q, K, V, O, gate, up, down)
 * to remove.
 *
 * Parameters per unit (dim d, head size hs, G = nHeads / nKvHeads query heads per KV head):
 *   KV group     (2G + 2) * hs * d    G query columns + K + V columns + G*hs rows of O
 *   FFN channel  3 * d                a gate and an up column, a down row
 *
 * - 'adaptive' (FLAP's AL-AM structure, their `prune_flap`): attention channel scores and FFN
 *   channel scores are standardized per module kind (minus the mean, over the sample standard
 *   deviation; over all blocks by default, within each block as FLAP's code: `Standardization`);
 *   a KV group scores the mean of its channels' standardized scores. All units of all blocks are then ranked together and the
 *   lowest removed until the removed parameters are as close to the target as they get, so
 *   blocks and modules end up with different ratios. Unlike FLAP, a block always keeps at least
 *   one KV group and one FFN channel (the graphs have no attention-free block yet).
 * - 'uniform' (Wanda-sp): every block loses the same fraction of its parameters: round(ratio *
 *   nKvHeads) KV groups (summed channel scores, lowest first), then as many lowest-scoring FFN
 *   channels as bring the block to the ratio. (Wanda-sp's code removes int(ratio * n) of the
 *   heads and of the channels separately; with 4 KV groups a 20% ratio would then remove no
 *   head and only 20% of the FFN, i.e. not 20% of the parameters. Equal parameters is what the
 *   comparison needs.)
 *
 * @example
 * const kept = selectWidth(scores, { dim: 160, headSize: 20, nHeads: 8, nKvHeads: 4, hidden: 432 }, 0.2, 'adaptive');
 * // kept[i] = { kvHeads: [0, 2, 3], ffn: [0, 1, 4, ...] } for scores[i]'s block
 */
import { WhittleError } from '../../core/errors.ts';
import type { ChannelScores } from './width-scores.ts';

/** The full (unpruned) shape of a block. */
export interface BlockShape {
  dim: number;
  headSize: number;
  nHeads: number;
  nKvHeads: number;
  hidden: number;
}

/** The units one block keeps, ascending indices into the full block. */
export interface KeptWidth {
  kvHeads: number[];
  ffn: number[];
}

export type WidthSelection = 'adaptive' | 'uniform';

/**
 * Where 'adaptive' standardizes: 'model' (default) = over all blocks' channels of a module kind at
 * once, so the blocks' differences in scale survive and a block whose channels all matter more
 * keeps more of them; 'block' = within each block's module, as FLAP's released code does
 * (`standarlization` along the channel axis of the [layers, channels] stack), which gives every
 * block the same score distribution and leaves the split to its shape. On the two trained story
 * models 'model' is far better at 20-25% removed (bench/PRUNING.md: stories-baseline held-out
 * 5.52 against 8.60 at 24% of parameters, calibration perplexity 5.57 against 6.92).
 */
export type Standardization = 'block' | 'model';

/** Parameters one KV group and one FFN channel carry. */
export function unitParams(s: BlockShape): { group: number; channel: number } {
  const G = s.nHeads / s.nKvHeads;
  return { group: (2 * G + 2) * s.headSize * s.dim, channel: 3 * s.dim };
}

/** Linear parameters of a block that kept `kvHeads` groups and `hidden` channels. */
export function blockParams(s: BlockShape, kvHeads = s.nKvHeads, hidden = s.hidden): number {
  const u = unitParams(s);
  return kvHeads * u.group + hidden * u.channel;
}

/** (x - mean) / sample std; all zeros when the scores do not vary. */
function standardize(x: Float64Array): Float64Array {
  const n = x.length;
  let mean = 0;
  for (const v of x) mean += v;
  mean /= n;
  let ss = 0;
  for (const v of x) ss += (v - mean) ** 2;
  const std = n > 1 ? Math.sqrt(ss / (n - 1)) : 0;
  return Float64Array.from(x, (v) => (std > 0 ? (v - mean) / std : 0));
}

/** Group g's channel scores combined: channels [g * G * hs, (g + 1) * G * hs) of o_proj's input. */
function groupScores(attention: Float64Array, s: BlockShape, combine: 'mean' | 'sum'): Float64Array {
  const width = (s.nHeads / s.nKvHeads) * s.headSize;
  const out = new Float64Array(s.nKvHeads);
  for (let g = 0; g < s.nKvHeads; g++) {
    let acc = 0;
    for (let c = g * width; c < (g + 1) * width; c++) acc += attention[c]!;
    out[g] = combine === 'mean' ? acc / width : acc;
  }
  return out;
}

function checkScores(scores: readonly ChannelScores[], s: BlockShape, ratio: number): void {
  if (!(Number.isFinite(ratio) && ratio >= 0 && ratio < 1)) throw new WhittleError('INVALID_ARGUMENT', `width ratio must be in [0, 1), got ${ratio}`);
  if (scores.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'no blocks to prune');
  for (const b of scores) {
    if (b.attention.length !== s.nHeads * s.headSize || b.ffn.length !== s.hidden) {
      throw new WhittleError('INVALID_ARGUMENT', `scores of ${b.attention.length} attention / ${b.ffn.length} FFN channels do not fit ${s.nHeads} heads of ${s.headSize} and ${s.hidden} FFN channels`);
    }
  }
}

/** Kept = all indices in 0..n-1 not in `removed`, ascending. */
const keptOf = (n: number, removed: Set<number>) => Array.from({ length: n }, (_, i) => i).filter((i) => !removed.has(i));

/** Lowest `count` indices of `scores` (ties: lower index first). */
function lowest(scores: Float64Array, count: number): Set<number> {
  const order = Array.from(scores.keys()).sort((a, b) => scores[a]! - scores[b]! || a - b);
  return new Set(order.slice(0, count));
}

/** What each block in `scores` keeps when `ratio` of their linear parameters go (see the header). */
export function selectWidth(scores: readonly ChannelScores[], shape: BlockShape, ratio: number, selection: WidthSelection, standardization: Standardization = 'model'): KeptWidth[] {
  checkScores(scores, shape, ratio);
  return selection === 'adaptive' ? selectAdaptive(scores, shape, ratio, standardization) : selectUniform(scores, shape, ratio);
}

/** Each block's scores standardized on its own, or all blocks' together (then split back per block). */
function standardized(blocks: readonly Float64Array[], standardization: Standardization): Float64Array[] {
  if (standardization === 'block') return blocks.map(standardize);
  const all = standardize(Float64Array.from(blocks.flatMap((b) => Array.from(b))));
  let o = 0;
  return blocks.map((b) => all.slice(o, (o += b.length)));
}

function selectUniform(scores: readonly ChannelScores[], s: BlockShape, ratio: number): KeptWidth[] {
  const u = unitParams(s);
  const target = ratio * blockParams(s);
  return scores.map((b) => {
    const groups = Math.min(s.nKvHeads - 1, Math.round(ratio * s.nKvHeads));
    const channels = Math.max(0, Math.min(s.hidden - 1, Math.round((target - groups * u.group) / u.channel)));
    return { kvHeads: keptOf(s.nKvHeads, lowest(groupScores(b.attention, s, 'sum'), groups)), ffn: keptOf(s.hidden, lowest(b.ffn, channels)) };
  });
}

function selectAdaptive(scores: readonly ChannelScores[], s: BlockShape, ratio: number, standardization: Standardization): KeptWidth[] {
  const u = unitParams(s);
  interface Unit { block: number; kind: 'group' | 'channel'; index: number; score: number }
  const units: Unit[] = [];
  const attention = standardized(scores.map((b) => b.attention), standardization);
  const ffn = standardized(scores.map((b) => b.ffn), standardization);
  scores.forEach((_, block) => {
    groupScores(attention[block]!, s, 'mean').forEach((score, index) => units.push({ block, kind: 'group', index, score }));
    ffn[block]!.forEach((score, index) => units.push({ block, kind: 'channel', index, score }));
  });
  // Deterministic order for equal scores: block, then groups before channels, then index.
  units.sort((a, b) => a.score - b.score || a.block - b.block || (a.kind === b.kind ? 0 : a.kind === 'group' ? -1 : 1) || a.index - b.index);
  const target = ratio * scores.length * blockParams(s);
  const removedGroups = scores.map(() => new Set<number>());
  const removedChannels = scores.map(() => new Set<number>());
  let removed = 0;
  for (const unit of units) {
    const p = unit.kind === 'group' ? u.group : u.channel;
    // Take a unit while it brings the total closer to the target (FLAP's threshold is the rank
    // whose cumulative kept weight is closest to the target too); keep scanning, so a head too
    // big to fit the remainder can leave room for cheaper channels after it.
    if (removed + p / 2 > target) continue;
    const set = unit.kind === 'group' ? removedGroups[unit.block]! : removedChannels[unit.block]!;
    const n = unit.kind === 'group' ? s.nKvHeads : s.hidden;
    if (set.size + 1 >= n) continue; // keep at least one of each
    set.add(unit.index);
    removed += p;
  }
  return scores.map((_, b) => ({ kvHeads: keptOf(s.nKvHeads, removedGroups[b]!), ffn: keptOf(s.hidden, removedChannels[b]!) }));
}

/**
 * A target shape (Sheared LLaMA's idea): every block in `scores` keeps exactly `keep.kvHeads` KV
 * groups and `keep.ffn` FFN channels, the highest scored (groups by the sum of their channels'
 * scores, as the uniform selection ranks them; ties: the lower index is removed first).
 */
export function selectShape(scores: readonly ChannelScores[], shape: BlockShape, keep: { kvHeads: number; ffn: number }): KeptWidth[] {
  checkScores(scores, shape, 0);
  const fits = (n: number, max: number) => Number.isInteger(n) && n >= 1 && n <= max;
  if (!fits(keep.kvHeads, shape.nKvHeads) || !fits(keep.ffn, shape.hidden)) {
    throw new WhittleError('INVALID_ARGUMENT', `a block keeps 1..${shape.nKvHeads} KV heads and 1..${shape.hidden} FFN channels, not ${keep.kvHeads} and ${keep.ffn}`, { kvHeads: keep.kvHeads, ffn: keep.ffn });
  }
  return scores.map((b) => ({
    kvHeads: keptOf(shape.nKvHeads, lowest(groupScores(b.attention, shape, 'sum'), shape.nKvHeads - keep.kvHeads)),
    ffn: keptOf(shape.hidden, lowest(b.ffn, shape.hidden - keep.ffn)),
  }));
}
