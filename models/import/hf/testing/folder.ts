/**
 * Test support: writes Hugging Face model folders the way PyTorch/`safetensors` would (F32, F16
 * or BF16, one file or shards with `model.safetensors.index.json`), from float32 weights or from
 * an existing folder. Shares no code with the reader (models/import/hf/safetensors.ts), so tests
 * that read these folders check the reader against an independent writer.
 *
 * @example
 * const bf16 = reshardHfFolder(readFolder('public/models/stories-layerskip'), { dtype: 'BF16', shards: 3 });
 */
import type { LlamaConfig, LlamaWeights } from '../../../llama/types.ts';

export type HfDtype = 'F32' | 'F16' | 'BF16';

export interface TensorSpec {
  shape: number[];
  data: Float32Array;
  dtype?: HfDtype;
}

/** File name -> bytes, like HfModelFiles. */
export type FolderFiles = Record<string, ArrayBuffer>;

const f32Bits = (data: Float32Array) => new Uint32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));

/** float32 -> bfloat16 bits, round to nearest even (what torch's `.to(torch.bfloat16)` does); NaN stays NaN. */
function toBf16Bits(data: Float32Array): Uint16Array {
  const u = f32Bits(data);
  return Uint16Array.from(u, (x) => ((x & 0x7fffffff) > 0x7f800000 ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16));
}

/** float32 -> IEEE half bits, round to nearest even, with subnormals and overflow to infinity. */
function toF16Bits(data: Float32Array): Uint16Array {
  const u = f32Bits(data);
  return Uint16Array.from(u, (x) => {
    const sign = (x >>> 16) & 0x8000;
    const exp = (x >>> 23) & 0xff;
    let mant = x & 0x7fffff;
    if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
    const e = exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
      if (e < -10) return sign;
      mant |= 0x800000; // the implicit bit, shifted into a subnormal half
      const shift = 14 - e;
      const half = 1 << (shift - 1);
      const rest = mant & ((1 << shift) - 1);
      let out = mant >>> shift;
      if (rest > half || (rest === half && out & 1)) out++;
      return sign | out;
    }
    let out = (e << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && out & 1)) out++; // may carry into the exponent: correct
    return sign | out;
  });
}

/**
 * The value a float32 takes after a round trip through `dtype`, computed arithmetically (not by bit
 * tricks), so a test's reference weights do not come from the same code as the file's bits.
 */
export function roundThrough(data: Float32Array, dtype: HfDtype): Float32Array {
  if (dtype === 'F32') return Float32Array.from(data);
  const mantissaBits = dtype === 'BF16' ? 7 : 10;
  const minExp = dtype === 'BF16' ? -126 : -14;
  const maxFinite = dtype === 'BF16' ? 3.3895313892515355e38 : 65504;
  return Float32Array.from(data, (x) => {
    if (!Number.isFinite(x) || x === 0) return x;
    let e = Math.floor(Math.log2(Math.abs(x)));
    if (2 ** e > Math.abs(x)) e--; // log2 can round up just below a power of two
    else if (2 ** (e + 1) <= Math.abs(x)) e++;
    const exp = Math.max(e, minExp);
    const ulp = 2 ** (exp - mantissaBits);
    const q = x / ulp;
    let r = Math.round(q);
    if (Math.abs(q - Math.trunc(q)) === 0.5 && r % 2 !== 0) r -= 1; // Math.round breaks ties upward; ties go to even
    const y = r * ulp;
    return Math.abs(y) > maxFinite ? Math.sign(y) * Infinity : y;
  });
}

/** A safetensors file: 8-byte header length, JSON header padded to 8 bytes (like the Rust writer), data. */
export function writeSafetensors(tensors: Record<string, TensorSpec>): ArrayBuffer {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const dtype = t.dtype ?? 'F32';
    const bytes = new Uint8Array(dtype === 'F32' ? f32Bits(t.data).buffer : (dtype === 'BF16' ? toBf16Bits(t.data) : toF16Bits(t.data)).buffer);
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((json.length + 8) % 8)) % 8);
  const head = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + head.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(head.length), true);
  out.set(head, 8);
  let p = 8 + head.length;
  for (const b of blobs) {
    out.set(b, p);
    p += b.length;
  }
  return out.buffer;
}

/** HF tensor names and shapes of a LLaMA's weights (lm_head only when untied). */
export function hfTensors(c: LlamaConfig, w: LlamaWeights, dtype: HfDtype = 'F32'): Record<string, TensorSpec> {
  const hs = c.headDim ?? c.dim / c.nHeads; // written out here, not taken from the code under test
  const t: Record<string, TensorSpec> = {
    'model.embed_tokens.weight': { shape: [c.vocabSize, c.dim], data: w.tokenEmbedding, dtype },
    'model.norm.weight': { shape: [c.dim], data: w.finalNorm, dtype },
  };
  if (!c.tiedEmbeddings) t['lm_head.weight'] = { shape: [c.vocabSize, c.dim], data: w.lmHead, dtype };
  w.layers.forEach((l, i) => {
    const p = `model.layers.${i}.`;
    t[`${p}input_layernorm.weight`] = { shape: [c.dim], data: l.attnNorm, dtype };
    t[`${p}self_attn.q_proj.weight`] = { shape: [c.nHeads * hs, c.dim], data: l.wq, dtype };
    t[`${p}self_attn.k_proj.weight`] = { shape: [c.nKvHeads * hs, c.dim], data: l.wk, dtype };
    t[`${p}self_attn.v_proj.weight`] = { shape: [c.nKvHeads * hs, c.dim], data: l.wv, dtype };
    t[`${p}self_attn.o_proj.weight`] = { shape: [c.dim, c.nHeads * hs], data: l.wo, dtype };
    t[`${p}post_attention_layernorm.weight`] = { shape: [c.dim], data: l.ffnNorm, dtype };
    t[`${p}mlp.gate_proj.weight`] = { shape: [c.hiddenDim, c.dim], data: l.w1, dtype };
    t[`${p}mlp.up_proj.weight`] = { shape: [c.hiddenDim, c.dim], data: l.w3, dtype };
    t[`${p}mlp.down_proj.weight`] = { shape: [c.dim, c.hiddenDim], data: l.w2, dtype };
  });
  return t;
}

/** The F32 tensors of a safetensors file, parsed here (independently of the reader under test). */
export function readF32Tensors(buffer: ArrayBuffer): Record<string, TensorSpec> {
  const n = Number(new DataView(buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n))) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out: Record<string, TensorSpec> = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (t.dtype !== 'F32') throw new Error(`readF32Tensors: ${name} is ${t.dtype}`);
    out[name] = { shape: t.shape, data: new Float32Array(buffer.slice(8 + n + t.data_offsets[0], 8 + n + t.data_offsets[1])) };
  }
  return out;
}

/**
 * Splits tensors into `shards` files in `dtype` with HF's names (`model-00001-of-00003.safetensors`)
 * and the index; `shards: 1` writes a plain `model.safetensors`.
 */
export function shardTensors(tensors: Record<string, TensorSpec>, opts: { dtype: HfDtype; shards: number }): FolderFiles {
  const entries = Object.entries(tensors).map(([k, t]) => [k, { ...t, dtype: opts.dtype }] as const);
  if (opts.shards === 1) return { 'model.safetensors': writeSafetensors(Object.fromEntries(entries)) };
  const out: FolderFiles = {};
  const weightMap: Record<string, string> = {};
  const per = Math.ceil(entries.length / opts.shards);
  let totalSize = 0;
  for (let s = 0; s < opts.shards; s++) {
    const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(opts.shards).padStart(5, '0')}.safetensors`;
    const part = entries.slice(s * per, (s + 1) * per);
    out[name] = writeSafetensors(Object.fromEntries(part));
    for (const [k, t] of part) {
      weightMap[k] = name;
      totalSize += t.data.length * (opts.dtype === 'F32' ? 4 : 2);
    }
  }
  out['model.safetensors.index.json'] = new TextEncoder().encode(JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)).buffer as ArrayBuffer;
  return out;
}

/**
 * An HF folder with its single F32 `model.safetensors` rewritten in `dtype` and split into
 * `shards`; every other file (config, tokenizer, generation config) is kept as it is.
 */
export function reshardHfFolder(files: FolderFiles, opts: { dtype: HfDtype; shards: number }): FolderFiles {
  const { 'model.safetensors': single, ...rest } = files;
  if (!single) throw new Error('reshardHfFolder: the folder has no model.safetensors');
  const out: FolderFiles = { ...rest, ...shardTensors(readF32Tensors(single), opts) };
  // torch_dtype tells loaders what the checkpoint holds; keep config.json honest.
  if (rest['config.json']) {
    const config = JSON.parse(new TextDecoder().decode(rest['config.json'])) as Record<string, unknown>;
    config.torch_dtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[opts.dtype];
    out['config.json'] = new TextEncoder().encode(JSON.stringify(config, null, 2)).buffer as ArrayBuffer;
  }
  return out;
}
