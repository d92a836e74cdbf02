/**
 * The GGUF exporter, read back by a minimal GGUF reader written here from ggml's docs/gguf.md
 * (not the writer's code), and llama.cpp's Q8_0 / Q4_0 block formats against hand-computed
 * blocks. That llama.cpp itself loads the files and generates Whittle's tokens is e2e/wllama.spec.ts.
 */
import { describe, expect, it } from 'vitest';
import { WhittleError } from '../../core/errors.ts';
import type { Llama2cTokenizer } from '../import/llama2c/tokenizer.ts';
import type { LlamaConfig, LlamaWeights } from '../llama/types.ts';
import { exportGguf } from './gguf.ts';
import { dequantizeQ4_0, dequantizeQ8_0, fp16ToFp32, fp32ToFp16, quantizeQ4_0, quantizeQ8_0 } from './gguf-quant.ts';
import { tokenizerKvs } from './gguf-tokenizer.ts';

// ---- an independent reader: header, KV (all value types), tensor infos, alignment ----

type Value = number | bigint | boolean | string | Value[];
interface TensorInfo {
  name: string;
  ne: number[];
  type: number;
  offset: number;
}
interface Parsed {
  version: number;
  kv: Map<string, { type: number; value: Value }>;
  tensors: TensorInfo[];
  dataStart: number;
  alignment: number;
}

function readGguf(bytes: Uint8Array): Parsed {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const u32 = () => ((o += 4), v.getUint32(o - 4, true));
  const u64 = () => ((o += 8), Number(v.getBigUint64(o - 8, true)));
  const str = () => {
    const n = u64();
    o += n;
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(o - n, o));
  };
  const scalar = (type: number): Value => {
    switch (type) {
      case 0:
        return ((o += 1), v.getUint8(o - 1));
      case 1:
        return ((o += 1), v.getInt8(o - 1));
      case 2:
        return ((o += 2), v.getUint16(o - 2, true));
      case 3:
        return ((o += 2), v.getInt16(o - 2, true));
      case 4:
        return u32();
      case 5:
        return ((o += 4), v.getInt32(o - 4, true));
      case 6:
        return ((o += 4), v.getFloat32(o - 4, true));
      case 7:
        return ((o += 1), v.getUint8(o - 1) !== 0);
      case 8:
        return str();
      case 9: {
        const t = u32();
        const n = u64();
        return Array.from({ length: n }, () => scalar(t));
      }
      case 10:
        return ((o += 8), v.getBigUint64(o - 8, true));
      case 11:
        return ((o += 8), v.getBigInt64(o - 8, true));
      case 12:
        return ((o += 8), v.getFloat64(o - 8, true));
      default:
        throw new Error(`unknown GGUF value type ${type} at ${o}`);
    }
  };
  expect(new TextDecoder().decode(bytes.subarray(0, 4))).toBe('GGUF');
  o = 4;
  const version = u32();
  const nTensors = u64();
  const nKv = u64();
  const kv = new Map<string, { type: number; value: Value }>();
  for (let i = 0; i < nKv; i++) {
    const key = str();
    const type = u32();
    kv.set(key, { type, value: scalar(type) });
  }
  const tensors: TensorInfo[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, () => u64());
    tensors.push({ name, ne, type: u32(), offset: u64() });
  }
  const alignment = (kv.get('general.alignment')?.value as number | undefined) ?? 32;
  return { version, kv, tensors, dataStart: Math.ceil(o / alignment) * alignment, alignment };
}

/** Bytes a tensor takes in the file (ggml type sizes: F32 4 per value, Q8_0 34 and Q4_0 18 per 32). */
const tensorBytes = (t: TensorInfo) => {
  const n = t.ne.reduce((a, b) => a * b, 1);
  return t.type === 0 ? n * 4 : t.type === 8 ? (n / 32) * 34 : t.type === 2 ? (n / 32) * 18 : NaN;
};

// ---- a tiny model with deterministic weights ----

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) * 2 - 1;
}

function tinyModel(over: Partial<LlamaConfig> = {}): { config: LlamaConfig; weights: LlamaWeights } {
  // hiddenDim 72: ffn_down's rows (width 72) cannot be split into blocks of 32 and must stay F32.
  const config: LlamaConfig = {
    dim: 64,
    hiddenDim: 72,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    vocabSize: 12,
    maxSeqLen: 128,
    ropeTheta: 10000,
    normEps: 1e-5,
    tiedEmbeddings: true,
    ropeLayout: 'interleaved',
    bosTokenId: 1,
    eosTokenId: 2,
    ...over,
  };
  const r = rng(7);
  const t = (n: number) => Float32Array.from({ length: n }, () => r() * 0.5);
  const { dim, hiddenDim, vocabSize } = config;
  const hs = dim / config.nHeads;
  const kv = config.nKvHeads * hs;
  const tokenEmbedding = t(vocabSize * dim);
  return {
    config,
    weights: {
      tokenEmbedding,
      layers: Array.from({ length: config.nLayers }, () => ({
        attnNorm: t(dim),
        wq: t(dim * dim),
        wk: t(kv * dim),
        wv: t(kv * dim),
        wo: t(dim * dim),
        ffnNorm: t(dim),
        w1: t(hiddenDim * dim),
        w2: t(dim * hiddenDim),
        w3: t(hiddenDim * dim),
      })),
      finalNorm: t(dim),
      lmHead: config.tiedEmbeddings ? tokenEmbedding : t(vocabSize * dim),
    },
  };
}

const tinyTokenizer = (): Llama2cTokenizer => ({
  maxTokenLength: 8,
  pieces: ['<unk>', '\n<s>\n', '\n</s>\n', '<0x0A>', '<0x41>', ' ', 'a', 'b', ' a', 'ab', ' ab', 'é'],
  scores: Float32Array.from([0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7]),
});

const tensorF32 = (bytes: Uint8Array, p: Parsed, name: string) => {
  const t = p.tensors.find((x) => x.name === name)!;
  expect(t.type).toBe(0);
  const start = p.dataStart + t.offset;
  return new Float32Array(bytes.slice(start, start + tensorBytes(t)).buffer);
};

describe('fp16 and the Q8_0 / Q4_0 blocks', () => {
  it('fp16: exact values, round to nearest even, subnormals, overflow', () => {
    expect(fp32ToFp16(1)).toBe(0x3c00);
    expect(fp32ToFp16(-2)).toBe(0xc000);
    expect(fp32ToFp16(65504)).toBe(0x7bff);
    expect(fp32ToFp16(70000)).toBe(0x7c00);
    expect(fp32ToFp16(0.1)).toBe(0x2e66); // 0.0999755859375
    expect(fp32ToFp16(1 + 2 ** -11)).toBe(0x3c00); // a tie, to the even mantissa
    expect(fp32ToFp16(1 + 3 * 2 ** -11)).toBe(0x3c02); // a tie, to the even mantissa (up)
    expect(fp32ToFp16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(fp32ToFp16(2 ** -14 - 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(fp32ToFp16(2 ** -26)).toBe(0);
    expect(fp16ToFp32(0x2e66)).toBe(0.0999755859375);
    expect(fp16ToFp32(0x0001)).toBe(2 ** -24);
  });

  it('Q8_0: d = max|x| / 127 as fp16, q = roundf(x / d) (halves away from zero)', () => {
    const x = new Float32Array(64);
    x.set([127, -63.5, 0.49, 2.5, -2.5]); // block 0: amax 127 -> d = 1; block 1: all zero
    const q = quantizeQ8_0(x);
    expect(q.length).toBe(2 * 34);
    expect([q[0], q[1]]).toEqual([0x00, 0x3c]); // d = 1.0 (fp16 0x3c00, little-endian)
    expect(Array.from(new Int8Array(q.buffer, 2, 5))).toEqual([127, -64, 0, 3, -3]);
    expect(Array.from(q.subarray(34))).toEqual(new Array(34).fill(0)); // d = 0, q = 0
    expect(Array.from(dequantizeQ8_0(q).subarray(0, 5))).toEqual([127, -64, 0, 3, -3]);
  });

  it('Q4_0: d = (value of largest |x|) / -8, q = min(15, trunc(x/d + 8.5)); byte j = q[j] | q[j+16] << 4', () => {
    // Block 0: largest |x| is -8 -> d = 1.
    const a = new Float32Array(32);
    a.set([-8, 7, 7.9, 0, -0.6, 0.5]);
    a[16] = 3;
    const qa = quantizeQ4_0(a);
    expect(qa.length).toBe(18);
    expect([qa[0], qa[1]]).toEqual([0x00, 0x3c]);
    // q: -8 -> 0, 7 -> 15, 7.9 -> 15 (16 clipped), 0 -> 8, -0.6 -> 7, 0.5 -> 9; x[16] = 3 -> 11 in byte 0's high nibble.
    expect(Array.from(qa.subarray(2, 8))).toEqual([
      0x00 | (11 << 4),
      0x0f | (8 << 4),
      0x0f | (8 << 4),
      0x08 | (8 << 4),
      0x07 | (8 << 4),
      0x09 | (8 << 4),
    ]);
    expect(Array.from(dequantizeQ4_0(qa).subarray(0, 6))).toEqual([-8, 7, 7, 0, -1, 1]);
    expect(dequantizeQ4_0(qa)[16]).toBe(3);
    // Block with a positive extreme: d = 16 / -8 = -2; 16 -> q 0 -> 16; -16 -> q 16 clipped to 15 -> -14.
    const b = new Float32Array(32);
    b.set([16, -16]);
    const qb = quantizeQ4_0(b);
    expect([qb[0], qb[1]]).toEqual([0x00, 0xc0]); // -2.0 = fp16 0xc000
    expect(Array.from(dequantizeQ4_0(qb).subarray(0, 2))).toEqual([16, -14]);
  });

  it('refuses rows that are not whole blocks', () => {
    expect(() => quantizeQ8_0(new Float32Array(33))).toThrow(WhittleError);
    expect(() => quantizeQ4_0(new Float32Array(40))).toThrow(/not whole blocks/);
  });
});

describe('exportGguf', () => {
  it('writes a GGUF v3 llama file: hparams, llama tokenizer, tensor infos, 32-byte alignment, F32 bytes as given', () => {
    const { config, weights } = tinyModel();
    const bytes = exportGguf(config, weights, { kind: 'llama2c', tokenizer: tinyTokenizer() }, { type: 'F32' });
    const p = readGguf(bytes);
    expect(p.version).toBe(3);
    const kv = (k: string) => p.kv.get(k)?.value;
    expect(kv('general.architecture')).toBe('llama');
    expect(kv('general.file_type')).toBe(0);
    expect(p.kv.get('llama.context_length')).toEqual({ type: 4, value: 128 });
    expect([kv('llama.embedding_length'), kv('llama.block_count'), kv('llama.feed_forward_length')]).toEqual([64, 2, 72]);
    expect([
      kv('llama.attention.head_count'),
      kv('llama.attention.head_count_kv'),
      kv('llama.rope.dimension_count'),
      kv('llama.vocab_size'),
    ]).toEqual([4, 2, 16, 12]);
    expect(p.kv.get('llama.rope.freq_base')).toEqual({ type: 6, value: 10000 });
    expect(kv('llama.attention.layer_norm_rms_epsilon')).toBeCloseTo(1e-5, 10);
    expect(kv('tokenizer.ggml.model')).toBe('llama');
    expect(kv('tokenizer.ggml.tokens')).toEqual(['<unk>', '<s>', '</s>', '<0x0A>', '<0x41>', '▁', 'a', 'b', '▁a', 'ab', '▁ab', 'é']);
    expect(kv('tokenizer.ggml.token_type')).toEqual([2, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1]);
    expect(kv('tokenizer.ggml.scores')).toEqual([0, 0, 0, 0, 0, -1, -2, -3, -4, -5, -6, -7]);
    expect([kv('tokenizer.ggml.bos_token_id'), kv('tokenizer.ggml.eos_token_id'), kv('tokenizer.ggml.add_bos_token')]).toEqual([
      1,
      2,
      true,
    ]);

    // Tied: no output.weight; ne innermost first.
    const names = p.tensors.map((t) => t.name);
    expect(names).toContain('token_embd.weight');
    expect(names).not.toContain('output.weight');
    expect(names.filter((n) => n.startsWith('blk.1.')).sort()).toEqual(
      ['attn_k', 'attn_norm', 'attn_output', 'attn_q', 'attn_v', 'ffn_down', 'ffn_gate', 'ffn_norm', 'ffn_up'].map(
        (n) => `blk.1.${n}.weight`,
      ),
    );
    const info = (n: string) => p.tensors.find((t) => t.name === n)!;
    expect(info('token_embd.weight').ne).toEqual([64, 12]);
    expect(info('blk.0.attn_k.weight').ne).toEqual([64, 32]);
    expect(info('blk.0.ffn_down.weight').ne).toEqual([72, 64]);
    expect(info('blk.0.attn_norm.weight').ne).toEqual([64]);
    // Offsets aligned, increasing, non-overlapping, and the file ends with the last tensor (padded).
    let end = 0;
    for (const t of [...p.tensors].sort((a, b) => a.offset - b.offset)) {
      expect(t.offset % p.alignment).toBe(0);
      expect(t.offset).toBeGreaterThanOrEqual(end);
      end = t.offset + tensorBytes(t);
    }
    expect(p.dataStart % 32).toBe(0);
    expect(bytes.length).toBe(p.dataStart + Math.ceil(end / 32) * 32);
    expect(tensorF32(bytes, p, 'blk.1.ffn_up.weight')).toEqual(weights.layers[1]!.w3);
    expect(tensorF32(bytes, p, 'output_norm.weight')).toEqual(weights.finalNorm);
    expect(tensorF32(bytes, p, 'blk.0.attn_q.weight')).toEqual(weights.layers[0]!.wq); // interleaved already: as is
  });

  it("permutes Hugging Face ('half') Q/K rows to interleaved pairs, and writes output.weight when untied", () => {
    const { config, weights } = tinyModel({ ropeLayout: 'half', tiedEmbeddings: false });
    const p = readGguf(exportGguf(config, weights, { kind: 'llama2c', tokenizer: tinyTokenizer() }, { type: 'F32' }));
    const bytes = exportGguf(config, weights, { kind: 'llama2c', tokenizer: tinyTokenizer() }, { type: 'F32' });
    const hs = 16;
    const check = (name: string, src: Float32Array, heads: number) => {
      const got = tensorF32(bytes, p, name);
      for (let h = 0; h < heads; h++) {
        for (let i = 0; i < hs / 2; i++) {
          // Interleaved row 2i is HF row i of the head, row 2i+1 is HF row i + hs/2.
          expect(got.subarray((h * hs + 2 * i) * 64, (h * hs + 2 * i + 1) * 64)).toEqual(
            src.subarray((h * hs + i) * 64, (h * hs + i + 1) * 64),
          );
          expect(got.subarray((h * hs + 2 * i + 1) * 64, (h * hs + 2 * i + 2) * 64)).toEqual(
            src.subarray((h * hs + hs / 2 + i) * 64, (h * hs + hs / 2 + i + 1) * 64),
          );
        }
      }
    };
    check('blk.0.attn_q.weight', weights.layers[0]!.wq, 4);
    check('blk.1.attn_k.weight', weights.layers[1]!.wk, 2);
    expect(tensorF32(bytes, p, 'blk.0.attn_v.weight')).toEqual(weights.layers[0]!.wv); // V is not rotated
    expect(tensorF32(bytes, p, 'output.weight')).toEqual(weights.lmHead);
  });

  it('Q8_0 / Q4_0: whole-block rows quantized (row by row), narrower rows and norms F32, the Q4_0 head Q8_0', () => {
    const { config, weights } = tinyModel({ tiedEmbeddings: false });
    for (const [type, fileType, blockType] of [
      ['Q8_0', 7, 8],
      ['Q4_0', 2, 2],
    ] as const) {
      const bytes = exportGguf(config, weights, { kind: 'llama2c', tokenizer: tinyTokenizer() }, { type });
      const p = readGguf(bytes);
      expect(p.kv.get('general.file_type')?.value).toBe(fileType);
      const typeOf = (n: string) => p.tensors.find((t) => t.name === n)!.type;
      expect(typeOf('blk.0.attn_q.weight')).toBe(blockType);
      expect(typeOf('blk.0.ffn_gate.weight')).toBe(blockType);
      expect(typeOf('blk.0.ffn_down.weight')).toBe(0); // rows of 72
      expect(typeOf('blk.0.ffn_norm.weight')).toBe(0);
      expect(typeOf('token_embd.weight')).toBe(blockType);
      expect(typeOf('output.weight')).toBe(8); // Q8_0 for both: the head stays above 4 bits
      // The stored blocks stand for the weights within half a quantization step of each block.
      const t = p.tensors.find((x) => x.name === 'blk.1.attn_output.weight')!;
      const raw = bytes.subarray(p.dataStart + t.offset, p.dataStart + t.offset + tensorBytes(t));
      const back = type === 'Q8_0' ? dequantizeQ8_0(raw) : dequantizeQ4_0(raw);
      const w = weights.layers[1]!.wo;
      for (let b = 0; b < w.length / 32; b++) {
        const block = w.subarray(b * 32, b * 32 + 32);
        const amax = Math.max(...Array.from(block, Math.abs));
        const step = type === 'Q8_0' ? amax / 127 : amax / 8;
        for (let j = 0; j < 32; j++) expect(Math.abs(back[b * 32 + j]! - block[j]!)).toBeLessThanOrEqual(step * 1.01 + 1e-6);
      }
      expect(p.tensors.find((x) => x.name === 'blk.0.ffn_down.weight')!.ne).toEqual([72, 64]);
    }
  });

  it('refuses an unknown weight type, weights that do not match the config, and a short sliding window', () => {
    const { config, weights } = tinyModel();
    const tok = { kind: 'llama2c' as const, tokenizer: tinyTokenizer() };
    expect(() => exportGguf(config, weights, tok, { type: 'Q5_K' as never })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => exportGguf({ ...config, dim: 32 }, weights, tok, { type: 'F32' })).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
    expect(() => exportGguf({ ...config, slidingWindow: 64 }, weights, tok, { type: 'F32' })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED' }),
    );
  });
});

describe('tokenizer metadata from tokenizer.json', () => {
  const LLAMA3_SPLIT =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
  const byteLevel = (regex: string) => ({
    added_tokens: [
      { id: 0, content: '<|endoftext|>', special: true },
      { id: 5, content: '<extra>', special: false },
    ],
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated' },
        { type: 'ByteLevel', use_regex: false },
      ],
    },
    post_processor: { type: 'ByteLevel' },
    model: { type: 'BPE', vocab: { '<|endoftext|>': 0, a: 1, b: 2, ab: 3, Ġab: 4 }, merges: ['a b', ['Ġ', 'ab']] },
  });
  const get = (kvs: ReturnType<typeof tokenizerKvs>, k: string) => kvs.find((x) => x.key === k)?.value;

  it("byte-level BPE -> 'gpt2' with merges, types and llama.cpp's pre-tokenizer name; padded ids unused", () => {
    const kvs = tokenizerKvs({ kind: 'hf', json: byteLevel(LLAMA3_SPLIT) }, { vocabSize: 7, bosTokenId: 0, eosTokenId: 0 });
    expect(get(kvs, 'tokenizer.ggml.model')).toEqual({ type: 'string', value: 'gpt2' });
    expect(get(kvs, 'tokenizer.ggml.pre')).toEqual({ type: 'string', value: 'llama-bpe' });
    expect(get(kvs, 'tokenizer.ggml.tokens')).toEqual({
      type: 'string[]',
      value: ['<|endoftext|>', 'a', 'b', 'ab', 'Ġab', '<extra>', '[PAD6]'],
    });
    expect(Array.from((get(kvs, 'tokenizer.ggml.token_type') as { value: ArrayLike<number> }).value)).toEqual([3, 1, 1, 1, 1, 4, 5]);
    expect(get(kvs, 'tokenizer.ggml.merges')).toEqual({ type: 'string[]', value: ['a b', 'Ġ ab'] });
    expect(get(kvs, 'tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: false });
  });

  it('refuses a split regex llama.cpp has no name for, unless the caller names it', () => {
    const json = byteLevel('\\p{L}+|\\s+');
    expect(() => tokenizerKvs({ kind: 'hf', json }, { vocabSize: 6, bosTokenId: 0, eosTokenId: 0 })).toThrow(
      expect.objectContaining({ code: 'UNSUPPORTED' }),
    );
    expect(
      get(tokenizerKvs({ kind: 'hf', json, pre: 'default' }, { vocabSize: 6, bosTokenId: 0, eosTokenId: 0 }), 'tokenizer.ggml.pre'),
    ).toEqual({ type: 'string', value: 'default' });
  });

  it("SentencePiece-style BPE (byte fallback, '▁') -> 'llama', scores = -(rank of the first merge making the piece)", () => {
    const json = {
      added_tokens: [
        { id: 0, content: '<unk>', special: true },
        { id: 1, content: '<s>', special: true },
        { id: 2, content: '</s>', special: true },
      ],
      normalizer: { type: 'Sequence', normalizers: [{ type: 'Prepend', prepend: '▁' }] },
      post_processor: { type: 'TemplateProcessing', single: [{ SpecialToken: { id: '<s>' } }, { Sequence: { id: 'A' } }] },
      model: {
        type: 'BPE',
        byte_fallback: true,
        unk_token: '<unk>',
        vocab: { '<unk>': 0, '<s>': 1, '</s>': 2, '<0x0A>': 3, '▁': 4, t: 5, h: 6, '▁t': 7, th: 8, '▁th': 9, xyz: 10 },
        merges: ['▁ t', 't h', '▁t h', '▁ th'],
      },
    };
    const kvs = tokenizerKvs({ kind: 'hf', json }, { vocabSize: 11, bosTokenId: 1, eosTokenId: 2 });
    expect(get(kvs, 'tokenizer.ggml.model')).toEqual({ type: 'string', value: 'llama' });
    // '▁t' rank 0, 'th' rank 1, '▁th' first made by rank 2; single characters 0; pieces no merge makes (specials, bytes, 'xyz'): lowest.
    expect(Array.from((get(kvs, 'tokenizer.ggml.scores') as { value: ArrayLike<number> }).value)).toEqual([
      -5, -5, -5, -5, 0, 0, 0, 0, -1, -2, -5,
    ]);
    expect(Array.from((get(kvs, 'tokenizer.ggml.token_type') as { value: ArrayLike<number> }).value)).toEqual([
      2, 3, 3, 6, 1, 1, 1, 1, 1, 1, 1,
    ]);
    expect(get(kvs, 'tokenizer.ggml.add_bos_token')).toEqual({ type: 'bool', value: true });
  });
});
