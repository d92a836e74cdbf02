/**
 * models/compress/variant.ts readVariant: compressed variants (model.whittle.safetensors, which a
 * page may fetch from any URL or find in its cache) of small random models, dense and sparse
 * (q8 unstructured, q4 g32 2:4, fp32 2:4, version 2) and width-pruned (FLAP's narrowed blocks
 * with compensation biases, version 3), with their bytes mutated (mostly the
 * header, the sparse indexes and the counts), their header's tensor entries and the JSON strings
 * inside __metadata__ (config, setting, sparsity, version) edited structurally and re-framed.
 * Every case must read to weights of the shapes its config implies, or throw a typed error,
 * without allocating more than its bytes justify (a config can claim a context whose RoPE tables
 * no tensor backs).
 */
import { layerWidth, prepareWeights } from '../../../models/llama/prepare.ts';
import { randomLlama } from '../../../models/llama/testing/random-model.ts';
import { headSizeOf, type WeightsSetting, type WidthPlan } from '../../../models/llama/types.ts';
import { blockCount } from '../../../models/compress/blockwise.ts';
import type { LinearWeight } from '../../../models/compress/linear.ts';
import { readVariant, writeVariant } from '../../../models/compress/variant.ts';
import { storagePlan, withStoredHead } from '../../../models/compress/variant-forms.ts';
import { sliceWidth } from '../../../models/compress/width-slice.ts';
import { bufferOf, mutateBytes } from '../bytes.ts';
import { HOSTILE_NUMBERS } from '../hostile.ts';
import { mutateJsonText, mutateJsonValue } from '../json.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

interface Seed {
  bytes: Uint8Array;
  headerLen: number;
  header: Record<string, Record<string, unknown>>;
}

const SETTINGS: WeightsSetting[] = [
  { linear: 'q8', sparsity: { pattern: 'unstructured', method: 'magnitude' } },
  { linear: 'q4', group: 32, sparsity: { pattern: '2:4', method: 'magnitude' } },
  { linear: 'f32', sparsity: { pattern: '2:4', method: 'magnitude' } },
  { linear: 'q4', group: 32 },
];

function makeSeed(setting: WeightsSetting, i: number): Seed {
  // dim 40, hidden 72: the last MatMulNBits block is padded; alternately tied and untied with biases.
  const { config, weights } = randomLlama({ dim: 40, hiddenDim: 72, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 24, qkvBias: i % 2 === 1, tiedEmbeddings: i % 2 === 0 }, 11 + i);
  const plan = storagePlan(setting, 'wasm');
  return seedOf(writeVariant(withStoredHead(prepareWeights(config, weights, { weights: plan.prepare, backend: 'wasm' }), plan), setting, { id: 'fuzz', revision: 'r', format: 'hf' }));
}

/** A width variant: blocks 0 and 1 narrowed (one KV group, a third of the FFN), with compensation biases from made-up means. */
function widthSeed(): Seed {
  const { config, weights } = randomLlama({ dim: 40, hiddenDim: 72, nLayers: 3, nHeads: 4, nKvHeads: 2, vocabSize: 24, tiedEmbeddings: true }, 21);
  const keep = (n: number, step: number) => Array.from({ length: n }, (_, i) => i).filter((i) => i % step === 0);
  const plan: WidthPlan = { kvHeads: [[1], [0], [0, 1]], ffn: [keep(72, 3), keep(72, 2), keep(72, 1)], bias: true };
  const means = (l: number) => ({ wo: Float32Array.from({ length: 40 }, (_, i) => Math.sin(i + l)), down: Float32Array.from({ length: 72 }, (_, i) => Math.cos(i - l)) });
  const narrow = sliceWidth(prepareWeights(config, weights), plan, means, [0, 1]);
  return seedOf(writeVariant(narrow, { linear: 'f32' }, { id: 'fuzz', revision: 'r', format: 'hf' }, { plan, layers: [0, 1] }));
}

function seedOf(parts: ArrayBuffer[]): Seed {
  const bytes = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  parts.reduce((o, p) => (bytes.set(new Uint8Array(p), o), o + p.byteLength), 0);
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  return { bytes, headerLen, header: JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLen))) as Seed['header'] };
}

function frame(header: string, data: Uint8Array): Uint8Array {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

const WIDTH_KEYS = ['kvHeads', 'ffn', 'bias', 'layers'];
const CONFIG_KEYS = ['dim', 'hiddenDim', 'nLayers', 'nHeads', 'nKvHeads', 'vocabSize', 'maxSeqLen', 'headDim', 'ropeTheta', 'tiedEmbeddings', 'qkvBias', 'ropeScaling'];

/** One of the JSON strings in __metadata__ edited as JSON (config fields get hostile numbers half the time). */
function editMetadata(rng: Rng, meta: Record<string, unknown>): void {
  const key = pick(rng, ['config', 'config', 'setting', 'sparsity', 'stored', 'whittle_version', 'head', 'source', 'width', 'width']);
  const raw = meta[key];
  if (key === 'whittle_version' || key === 'head') {
    meta[key] = pick(rng, key === 'head' ? ['tied', 'stored', 'both', ''] : ['0', '1', '2', '3', '-1', '2.5', '1e9', '']);
    return;
  }
  if (key === 'config' && typeof raw === 'string' && chance(rng, 0.5)) {
    const c = JSON.parse(raw) as Record<string, unknown>;
    c[pick(rng, CONFIG_KEYS)] = chance(rng, 0.5) ? pick(rng, HOSTILE_NUMBERS) : int(rng, 1, 1 << 20);
    meta[key] = JSON.stringify(c);
    return;
  }
  const seed: unknown = typeof raw === 'string' ? JSON.parse(raw) : raw;
  const keys = key === 'width' ? WIDTH_KEYS : CONFIG_KEYS;
  try {
    meta[key] = chance(rng, 0.8) ? JSON.stringify(mutateJsonValue(rng, seed, { keys }).value) : mutateJsonText(rng, seed);
  } catch {
    // A value JSON cannot write (a bigint, nesting past the stack): this case keeps the field.
  }
}

/** The [K, N] of a decoded linear (every stored form says it). */
function shapeOf(w: LinearWeight, K: number): [number, number] {
  if (w instanceof Float32Array) return [K, w.length / K];
  return [w.weight.K, w.weight.N];
}

export function variantTarget(): FuzzTarget<ArrayBuffer> {
  let seeds: Seed[] = [];
  return {
    name: 'variant',
    // A sparse index byte decodes to 8-12 elements: uint32 codes while decoding, then the dense form (~50 bytes);
    // BF16 widens 2x; a tied head is the embedding transposed.
    allocFactor: 64,
    load() {
      seeds = [...SETTINGS.map(makeSeed), widthSeed()];
    },
    generate(rng) {
      const seed = pick(rng, seeds);
      const data = seed.bytes.subarray(8 + seed.headerLen);
      const r = rng();
      let bytes: Uint8Array;
      let kind: string;
      if (r < 0.4) {
        // Header bytes, and the first bytes of every tensor (sparse indexes, counts) are hot.
        const hot = [{ start: 0, end: 8 + seed.headerLen }];
        for (const e of Object.values(seed.header)) {
          const o = e.data_offsets as [number, number] | undefined;
          if (o) hot.push({ start: 8 + seed.headerLen + o[0], end: 8 + seed.headerLen + Math.min(o[1], o[0] + 16) });
        }
        bytes = mutateBytes(rng, seed.bytes, { hot });
        kind = 'mutate-bytes';
      } else if (r < 0.75) {
        const h = structuredClone(seed.header);
        editMetadata(rng, h.__metadata__!);
        if (chance(rng, 0.3)) editMetadata(rng, h.__metadata__!);
        bytes = frame(JSON.stringify(h), data);
        kind = 'edit-metadata';
      } else {
        let text: string;
        try {
          text = mutateJsonText(rng, seed.header, { keys: ['dtype', 'shape', 'data_offsets'] });
        } catch {
          text = JSON.stringify(seed.header);
        }
        bytes = frame(text, chance(rng, 0.2) ? data.subarray(0, int(rng, 0, data.length)) : data);
        kind = 'mutate-header-json';
      }
      return { input: bufferOf(bytes), bytes: bytes.byteLength, kind };
    },
    run(buffer) {
      const { prepared: p, info } = readVariant(buffer);
      const c = info.config;
      const hs = headSizeOf(c);
      expectThat(p.layers.length === c.nLayers && p.embedding.length === c.vocabSize * c.dim, 'layers or embedding not of the config');
      for (const l of p.layers) {
        // A narrowed block (a width variant) has its own heads and FFN width.
        const { nHeads, nKvHeads, hidden } = layerWidth(c, l);
        const qkvCols = (nHeads + 2 * nKvHeads) * hs;
        for (const [w, K, N] of [[l.qkv, c.dim, qkvCols], [l.wo, nHeads * hs, c.dim], [l.gateUp, c.dim, 2 * hidden], [l.down, hidden, c.dim]] as const) {
          const [k, n] = shapeOf(w, K);
          expectThat(k === K && n === N, `linear [${k}, ${n}] where the config implies [${K}, ${N}]`);
          if (!(w instanceof Float32Array) && w.kind === 'nbits') expectThat(w.weight.scales.length === N * blockCount(K, w.weight.blockSize), 'scales not one per block');
        }
      }
      expectThat(p.ropeCos.length === p.ropeSin.length && p.ropeCos.length === c.maxSeqLen * (hs / 2), 'RoPE tables not of the config');
    },
  };
}
