/**
 * A Whittle model's tokenizer as GGUF `tokenizer.ggml.*` metadata, in the two vocabularies
 * llama.cpp reads for LLaMA-family models:
 *
 * - `llama` (SentencePiece BPE): tokens with '▁' for spaces, a score per token (llama.cpp merges
 *   the adjacent pair whose concatenation has the highest score, as llama2.c's encoder and
 *   SentencePiece do) and a type per token (1 normal, 2 unknown, 3 control, 6 byte). From a
 *   llama2.c tokenizer.bin the scores are the file's own. From a Hugging Face tokenizer.json of
 *   the same kind (BPE + byte_fallback + a '▁' prefix, as `llama2cTokenizerToHf` or transformers'
 *   LlamaConverter write) the scores are rebuilt from the merge ranks: a piece's score is minus the
 *   rank of the first merge producing it, so llama.cpp's highest-score-first order is HF's
 *   lowest-rank-first order (transformers' own GGUF converter writes -1000 for every piece, which
 *   makes SentencePiece merge left to right instead). Multi-character pieces no merge produces
 *   can never come out of HF's BPE; they get the lowest score.
 * - `gpt2` (byte-level BPE): tokens in byte-level form, merges as "left right" strings in rank
 *   order, types (1 normal, 3 control for special added tokens, 4 user-defined for other added
 *   tokens, 5 unused for padding ids) and `tokenizer.ggml.pre`, the name llama.cpp knows the
 *   pre-tokenizer's split regex by. The regex is matched against the ones this file knows;
 *   another is refused (UNSUPPORTED) unless the caller names it, because llama.cpp would split
 *   text differently from the tokenizer the model was trained with.
 *
 * @example
 * const kvs = tokenizerKvs({ kind: 'llama2c', tokenizer }, { vocabSize: 512, bosTokenId: 1, eosTokenId: 2 });
 */
import { WhittleError } from '../../core/errors.ts';
import type { Llama2cTokenizer } from '../import/llama2c/tokenizer.ts';
import type { GgufKv } from './gguf-writer.ts';

export type GgufTokenizerSource =
  | { kind: 'llama2c'; tokenizer: Llama2cTokenizer }
  /** A parsed tokenizer.json; `pre` overrides the pre-tokenizer name for byte-level BPE. */
  | { kind: 'hf'; json: object; pre?: string; chatTemplate?: string };

export interface TokenizerIds {
  vocabSize: number;
  bosTokenId: number;
  eosTokenId: number;
}

const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;
const SPACE = '\u2581';
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;

/**
 * Byte-level pre-tokenizer split regexes -> llama.cpp's `tokenizer.ggml.pre` names
 * (llama-vocab.cpp); the strings are the published tokenizer.json ones.
 */
const KNOWN_SPLITS: Readonly<Record<string, string>> = {
  // Llama 3 (and tokenizers built from it, like the synthetic SmolLM2-sized stand-in).
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'llama-bpe',
  // Qwen2 / Qwen2.5: single digits.
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+":
    'qwen2',
};

interface HfAddedToken {
  id: number;
  content: string;
  special?: boolean;
}
interface HfTokenizerLike {
  added_tokens?: HfAddedToken[];
  normalizer?: unknown;
  pre_tokenizer?: unknown;
  post_processor?: unknown;
  model?: {
    type?: string;
    vocab?: Record<string, number>;
    merges?: (string | [string, string])[];
    byte_fallback?: boolean;
    unk_token?: string | null;
  };
}

const bad = (why: string) => new WhittleError('BAD_MODEL', `tokenizer.json: ${why}`);

/** `tokenizer.ggml.*` metadata for the model's vocabulary (`ids.vocabSize` tokens, padded if the tokenizer has fewer). */
export function tokenizerKvs(source: GgufTokenizerSource, ids: TokenizerIds): GgufKv[] {
  if (source.kind === 'llama2c') return llama2cKvs(source.tokenizer, ids);
  const json = source.json as HfTokenizerLike;
  if (json.model?.type !== 'BPE' || !json.model.vocab || !json.model.merges) {
    throw new WhittleError(
      'UNSUPPORTED',
      `tokenizer.json: model type ${JSON.stringify(json.model?.type)}; the GGUF export handles BPE only`,
    );
  }
  const kvs = isSentencePieceLike(json) ? hfSentencePieceKvs(json, ids) : hfByteLevelKvs(json, ids, source.pre);
  if (source.chatTemplate) kvs.push({ key: 'tokenizer.chat_template', value: { type: 'string', value: source.chatTemplate } });
  return kvs;
}

function commonKvs(model: 'llama' | 'gpt2', ids: TokenizerIds, addBos: boolean): GgufKv[] {
  return [
    { key: 'tokenizer.ggml.model', value: { type: 'string', value: model } },
    { key: 'tokenizer.ggml.bos_token_id', value: { type: 'u32', value: ids.bosTokenId } },
    { key: 'tokenizer.ggml.eos_token_id', value: { type: 'u32', value: ids.eosTokenId } },
    { key: 'tokenizer.ggml.add_bos_token', value: { type: 'bool', value: addBos } },
    { key: 'tokenizer.ggml.add_eos_token', value: { type: 'bool', value: false } },
  ];
}

function llama2cKvs(tok: Llama2cTokenizer, ids: TokenizerIds): GgufKv[] {
  if (tok.pieces.length !== ids.vocabSize) throw bad(`llama2.c tokenizer has ${tok.pieces.length} pieces, the model ${ids.vocabSize}`);
  // llama2.c's tokenizer.bin keeps <unk> at 0 and prints BOS/EOS as '\n<s>\n' / '\n</s>\n'.
  const special = new Map<number, [string, number]>([
    [0, ['<unk>', TOKEN_TYPE.UNKNOWN]],
    [ids.bosTokenId, ['<s>', TOKEN_TYPE.CONTROL]],
    [ids.eosTokenId, ['</s>', TOKEN_TYPE.CONTROL]],
  ]);
  const tokens: string[] = [];
  const types = new Int32Array(ids.vocabSize);
  tok.pieces.forEach((p, id) => {
    const s = special.get(id);
    tokens.push(s ? s[0] : p.replaceAll(' ', SPACE));
    types[id] = s ? s[1] : BYTE_PIECE.test(p) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL;
  });
  return [
    ...commonKvs('llama', ids, true),
    { key: 'tokenizer.ggml.unknown_token_id', value: { type: 'u32', value: 0 } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'string[]', value: tokens } },
    { key: 'tokenizer.ggml.scores', value: { type: 'f32[]', value: tok.scores } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'i32[]', value: types } },
  ];
}

/** BPE with byte fallback and a '▁' prefix/space escape: a SentencePiece model in HF's clothes. */
function isSentencePieceLike(json: HfTokenizerLike): boolean {
  const text = JSON.stringify([json.normalizer ?? null, json.pre_tokenizer ?? null]);
  return json.model?.byte_fallback === true && (text.includes(SPACE) || text.includes('Metaspace'));
}

/** Id -> token string, with added tokens placed at their ids; missing ids are null. */
function tokensById(json: HfTokenizerLike, vocabSize: number): (string | null)[] {
  const out: (string | null)[] = new Array<string | null>(vocabSize).fill(null);
  const place = (token: string, id: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
      throw bad(`token ${JSON.stringify(token)} has id ${id}, outside the model's ${vocabSize}`);
    out[id] = token;
  };
  for (const [token, id] of Object.entries(json.model!.vocab!)) place(token, id);
  for (const t of json.added_tokens ?? []) place(t.content, t.id);
  return out;
}

const mergePair = (m: string | [string, string]): [string, string] => {
  if (Array.isArray(m)) return m;
  const i = m.indexOf(' ', 1); // a merge's left side is never empty; split at the first separating space
  if (i < 0) throw bad(`merge ${JSON.stringify(m)} is not "left right"`);
  return [m.slice(0, i), m.slice(i + 1)];
};

/** Whether the post-processor puts a special token first (Llama's TemplateProcessing with <s>). */
function addsBos(json: HfTokenizerLike): boolean {
  const single = (json.post_processor as { type?: string; single?: { SpecialToken?: unknown }[] } | null | undefined)?.single;
  return Array.isArray(single) && single.length > 0 && single[0]!.SpecialToken !== undefined;
}

function hfSentencePieceKvs(json: HfTokenizerLike, ids: TokenizerIds): GgufKv[] {
  const byId = tokensById(json, ids.vocabSize);
  const ranks = new Map<string, number>();
  json.model!.merges!.forEach((m, rank) => {
    const [l, r] = mergePair(m);
    if (!ranks.has(l + r)) ranks.set(l + r, rank);
  });
  const addedSpecial = new Set((json.added_tokens ?? []).filter((t) => t.special).map((t) => t.id));
  const unk = json.model!.unk_token ?? null;
  const unkId = unk !== null ? json.model!.vocab![unk] : undefined;
  const lowest = -(json.model!.merges!.length + 1);
  const tokens: string[] = [];
  const scores = new Float32Array(ids.vocabSize);
  const types = new Int32Array(ids.vocabSize);
  byId.forEach((token, id) => {
    if (token === null) {
      tokens.push(`[PAD${id}]`);
      types[id] = TOKEN_TYPE.UNUSED;
      scores[id] = lowest;
      return;
    }
    tokens.push(token);
    const rank = ranks.get(token);
    scores[id] = rank !== undefined ? 0 - rank : [...token].length === 1 ? 0 : lowest; // 0 - rank: never -0
    types[id] =
      id === unkId
        ? TOKEN_TYPE.UNKNOWN
        : addedSpecial.has(id)
          ? TOKEN_TYPE.CONTROL
          : BYTE_PIECE.test(token)
            ? TOKEN_TYPE.BYTE
            : TOKEN_TYPE.NORMAL;
  });
  return [
    ...commonKvs('llama', ids, addsBos(json)),
    ...(unkId !== undefined ? [{ key: 'tokenizer.ggml.unknown_token_id', value: { type: 'u32', value: unkId } } as GgufKv] : []),
    { key: 'tokenizer.ggml.tokens', value: { type: 'string[]', value: tokens } },
    { key: 'tokenizer.ggml.scores', value: { type: 'f32[]', value: scores } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'i32[]', value: types } },
  ];
}

/** llama.cpp's pre-tokenizer name for a byte-level tokenizer.json, or UNSUPPORTED. */
export function byteLevelPreName(json: object): string {
  const pre = (json as HfTokenizerLike).pre_tokenizer as
    { type?: string; pretokenizers?: unknown[]; use_regex?: boolean } | null | undefined;
  const parts = (pre?.type === 'Sequence' ? (pre.pretokenizers ?? []) : [pre]) as {
    type?: string;
    pattern?: { Regex?: string };
    use_regex?: boolean;
    individual_digits?: boolean;
  }[];
  const split = parts.find((p) => p?.type === 'Split')?.pattern?.Regex;
  const byteLevel = parts.find((p) => p?.type === 'ByteLevel');
  if (!byteLevel)
    throw new WhittleError('UNSUPPORTED', 'tokenizer.json: a BPE tokenizer that is neither SentencePiece-like nor byte-level');
  if (split !== undefined) {
    const name = KNOWN_SPLITS[split];
    if (name) return name;
    throw new WhittleError(
      'UNSUPPORTED',
      `tokenizer.json: no llama.cpp pre-tokenizer name known for the split regex ${JSON.stringify(split)}; pass one explicitly`,
    );
  }
  const digits = parts.find((p) => p?.type === 'Digits');
  if (byteLevel.use_regex !== false && parts.length === 1) return 'gpt-2';
  // SmolLM / StarCoder-style: single digits, then GPT-2's byte-level regex.
  if (digits?.individual_digits && byteLevel.use_regex !== false && parts.length === 2) return 'smollm';
  throw new WhittleError(
    'UNSUPPORTED',
    `tokenizer.json: no llama.cpp pre-tokenizer name known for ${JSON.stringify(pre)}; pass one explicitly`,
  );
}

function hfByteLevelKvs(json: HfTokenizerLike, ids: TokenizerIds, preOverride?: string): GgufKv[] {
  const pre = preOverride ?? byteLevelPreName(json);
  const byId = tokensById(json, ids.vocabSize);
  const added = new Map((json.added_tokens ?? []).map((t) => [t.id, t]));
  const tokens: string[] = [];
  const types = new Int32Array(ids.vocabSize);
  byId.forEach((token, id) => {
    tokens.push(token ?? `[PAD${id}]`);
    const a = added.get(id);
    types[id] = token === null ? TOKEN_TYPE.UNUSED : a ? (a.special ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.USER_DEFINED) : TOKEN_TYPE.NORMAL;
  });
  const merges = json.model!.merges!.map((m) => mergePair(m).join(' '));
  return [
    ...commonKvs('gpt2', ids, addsBos(json)),
    { key: 'tokenizer.ggml.pre', value: { type: 'string', value: pre } },
    { key: 'tokenizer.ggml.tokens', value: { type: 'string[]', value: tokens } },
    { key: 'tokenizer.ggml.token_type', value: { type: 'i32[]', value: types } },
    { key: 'tokenizer.ggml.merges', value: { type: 'string[]', value: merges } },
  ];
}
