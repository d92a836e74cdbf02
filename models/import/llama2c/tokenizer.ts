/**
 * llama2.c `tokenizer.bin` -> a standard Hugging Face `tokenizer.json`, so the engine has one
 * tokenizer path (the HF format) for every model.
 *
 * tokenizer.bin: int32 max_token_length, then per token: float32 score, int32 byte length, bytes.
 * It is a SentencePiece BPE vocabulary with spaces already turned from '▁' into ' ', byte-fallback
 * pieces '<0x00>'..'<0xFF>', and '\n<s>\n' / '\n</s>\n' for BOS/EOS (llama2.c prints them so).
 *
 * llama2.c encodes by repeatedly merging the adjacent pair whose concatenation is the vocabulary
 * piece with the highest score. HF's BPE merges the pair of lowest merge rank, so the merges list
 * is every (left, right) split of every piece, ranked by the merged piece's score — the same
 * conversion `transformers` uses for SentencePiece BPE models (LlamaConverter).
 */
import { WhittleError } from '../../../core/errors.ts';

export interface Llama2cTokenizer {
  maxTokenLength: number;
  pieces: string[]; // [vocab], spaces as ' '
  scores: Float32Array; // [vocab]
}

/** Bytes of the smallest token record: float32 score + int32 length (an empty piece). */
const MIN_RECORD_BYTES = 8;

export function readLlama2cTokenizer(buffer: ArrayBuffer, vocabSize: number, name = 'tokenizer.bin'): Llama2cTokenizer {
  if (!Number.isSafeInteger(vocabSize) || vocabSize < 0) {
    throw new WhittleError('INVALID_ARGUMENT', `vocabSize must be a non-negative integer, got ${vocabSize}`, { vocabSize: String(vocabSize) });
  }
  // vocabSize sizes the scores array: refuse a count the file cannot hold before allocating it.
  if (4 + vocabSize * MIN_RECORD_BYTES > buffer.byteLength) {
    throw new WhittleError('BAD_MODEL', `${name}: ${buffer.byteLength} bytes cannot hold ${vocabSize} tokens`, { name, vocabSize });
  }
  const view = new DataView(buffer);
  const bytes = new Uint8Array(buffer);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  const need = (offset: number, n: number, what: string) => {
    if (offset + n > buffer.byteLength) {
      throw new WhittleError('BAD_MODEL', `${name}: truncated at ${what} (offset ${offset}, file ${buffer.byteLength} bytes)`, { name, offset });
    }
  };
  need(0, 4, 'header');
  const maxTokenLength = view.getInt32(0, true);
  let offset = 4;
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  for (let i = 0; i < vocabSize; i++) {
    need(offset, 8, `token ${i}`);
    scores[i] = view.getFloat32(offset, true);
    const len = view.getInt32(offset + 4, true);
    offset += 8;
    if (len < 0 || len > Math.max(maxTokenLength, 64)) throw new WhittleError('BAD_MODEL', `${name}: token ${i} claims ${len} bytes`, { name, token: i });
    need(offset, len, `token ${i}`);
    pieces.push(decoder.decode(bytes.subarray(offset, offset + len)));
    offset += len;
  }
  return { maxTokenLength, pieces, scores };
}

/** The subset of the tokenizer.json schema this converter writes. */
export interface HfTokenizerJson {
  version: '1.0';
  added_tokens: { id: number; content: string; single_word: boolean; lstrip: boolean; rstrip: boolean; normalized: boolean; special: boolean }[];
  normalizer: unknown;
  pre_tokenizer: null;
  post_processor: unknown;
  decoder: unknown;
  model: {
    type: 'BPE';
    dropout: null;
    unk_token: string;
    continuing_subword_prefix: null;
    end_of_word_suffix: null;
    fuse_unk: boolean;
    byte_fallback: boolean;
    ignore_merges: boolean;
    vocab: Record<string, number>;
    merges: [string, string][];
  };
}

const SPACE = '\u2581'; // SentencePiece's '▁'

/** A trie over code points; `end` marks a complete piece. */
interface Trie {
  next: Map<string, Trie>;
  end: boolean;
}

function buildTrie(words: readonly string[][]): Trie {
  const root: Trie = { next: new Map(), end: false };
  for (const word of words) {
    let node = root;
    for (const c of word) {
      let child = node.next.get(c);
      if (!child) node.next.set(c, (child = { next: new Map(), end: false }));
      node = child;
    }
    node.end = true;
  }
  return root;
}

/** The lengths n (ascending) for which chars[0..n) is a word of the trie. */
function matchEnds(trie: Trie, chars: readonly string[]): number[] {
  const ends: number[] = [];
  let node: Trie | undefined = trie;
  for (let i = 0; i < chars.length && node; i++) {
    node = node.next.get(chars[i]!);
    if (node?.end) ends.push(i + 1);
  }
  return ends;
}

/** Builds a Llama-style (SentencePiece BPE, byte fallback) tokenizer.json from a llama2.c vocabulary. */
export function llama2cTokenizerToHf(tok: Llama2cTokenizer, special = { unk: 0, bos: 1, eos: 2 }): HfTokenizerJson {
  const specialNames = new Map<number, string>([
    [special.unk, '<unk>'],
    [special.bos, '<s>'],
    [special.eos, '</s>'],
  ]);
  // No prototype: pieces are arbitrary strings, and 'constructor' or '__proto__' must be keys
  // like any other (on a plain object the first reads as present and the second is dropped).
  const vocab: Record<string, number> = Object.create(null) as Record<string, number>;
  const pieceOf: string[] = [];
  tok.pieces.forEach((p, id) => {
    const piece = specialNames.get(id) ?? p.replaceAll(' ', SPACE);
    pieceOf.push(piece);
    if (!Object.hasOwn(vocab, piece)) vocab[piece] = id;
  });
  const isByte = (p: string) => /^<0x[0-9A-F]{2}>$/.test(p);
  const specials = new Set(specialNames.values());
  const mergeable = (p: string) => Object.hasOwn(vocab, p) && !isByte(p) && !specials.has(p);

  // Which splits of a piece have both halves in the vocabulary: looking each prefix and suffix up
  // as a string costs O(length^2) per piece, which a file of a few long pieces turns into minutes;
  // walking tries of the pieces (forwards, and reversed for suffixes) finds them in O(length).
  const mergeablePieces = Object.keys(vocab).filter(mergeable).map((p) => [...p]);
  const prefixes = buildTrie(mergeablePieces);
  const suffixes = buildTrie(mergeablePieces.map((chars) => chars.slice().reverse()));
  const merges: { left: string; right: string; score: number; id: number }[] = [];
  pieceOf.forEach((piece, id) => {
    if (!mergeable(piece)) return;
    const chars = [...piece]; // split on code points, as BPE starts from characters
    const leftEnds = matchEnds(prefixes, chars);
    const rightStarts = matchEnds(suffixes, chars.slice().reverse()).map((n) => chars.length - n);
    const isRightStart = new Set(rightStarts);
    for (const i of leftEnds) {
      if (i > 0 && i < chars.length && isRightStart.has(i)) merges.push({ left: chars.slice(0, i).join(''), right: chars.slice(i).join(''), score: tok.scores[id]!, id });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id);

  return {
    version: '1.0',
    added_tokens: [...specialNames].map(([id, content]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    // SentencePiece's add_dummy_prefix + whitespace escaping, as in Llama's tokenizer.json.
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 0 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [special.bos], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
}
