/**
 * The text of every token id of a model, read from the model's own tokenizer file (the one its
 * manifest lists, served beside the weights). Dropout decoding reports the members' votes and
 * dropped context tokens as ids, and the panel shows pieces one by one, each as it reads inside a
 * sentence (SentencePiece's '▁' as a space, byte tokens as their character when printable):
 * `lm.decode([id])` gives a lone token's text, which drops that leading space, and the panel
 * also needs every whole-word id up front (random corruption draws from them).
 */
import type { ModelManifest } from 'whittle';

export interface TokenPieces {
  /** Text of each id, indexed by id. */
  pieces: string[];
  /** Ids that are whole pieces of text (no special or byte token): what random corruption draws from. */
  wordIds: number[];
}

const cache = new Map<string, Promise<TokenPieces>>();

export function tokenPieces(modelId: string): Promise<TokenPieces> {
  let pending = cache.get(modelId);
  if (!pending) {
    pending = readPieces(modelId);
    cache.set(modelId, pending);
    pending.catch(() => cache.delete(modelId));
  }
  return pending;
}

async function readPieces(modelId: string): Promise<TokenPieces> {
  const { models } = (await (await fetch('/models/manifests.json')).json()) as { models: ModelManifest[] };
  const files = models.find((m) => m.id === modelId)?.files ?? [];
  const hfFile = files.find((f) => f.name === 'tokenizer.json');
  const llama2cFile = files.find((f) => /^tok.*\.bin$/.test(f.name));
  if (hfFile?.url) return fromHfTokenizer((await (await fetch(hfFile.url)).json()) as HfTokenizer);
  if (llama2cFile?.url) return fromLlama2cTokenizer(await (await fetch(llama2cFile.url)).arrayBuffer());
  throw new Error(`no tokenizer file for ${modelId} in the manifest`);
}

interface HfTokenizer {
  model: { vocab: Record<string, number> };
  added_tokens?: { id: number; content: string }[];
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** A byte token's character when it is printable ASCII or a newline; other bytes are parts of a UTF-8 sequence: '·'. */
function byteText(piece: string): string | null {
  const m = BYTE_TOKEN.exec(piece);
  if (!m) return null;
  const code = parseInt(m[1]!, 16);
  return code === 10 ? '\n' : code >= 32 && code < 127 ? String.fromCharCode(code) : '·';
}

function fromHfTokenizer(json: HfTokenizer): TokenPieces {
  const pieces: string[] = [];
  const special = new Set((json.added_tokens ?? []).map((t) => t.id));
  const wordIds: number[] = [];
  for (const [piece, id] of Object.entries(json.model.vocab)) {
    const byte = byteText(piece);
    pieces[id] = byte ?? piece.replaceAll('▁', ' ');
    if (byte === null && !special.has(id)) wordIds.push(id);
  }
  for (const t of json.added_tokens ?? []) pieces[t.id] ??= t.content;
  return { pieces, wordIds: wordIds.sort((a, b) => a - b) };
}

/** llama2c's tokenizer.bin: int32 max piece length, then per id: float32 score, int32 length, the piece's UTF-8 bytes. */
function fromLlama2cTokenizer(buffer: ArrayBuffer): TokenPieces {
  const view = new DataView(buffer);
  const utf8 = new TextDecoder();
  const pieces: string[] = [];
  const wordIds: number[] = [];
  for (let offset = 4; offset + 8 <= buffer.byteLength; ) {
    const length = view.getInt32(offset + 4, true);
    const piece = utf8.decode(new Uint8Array(buffer, offset + 8, length));
    const byte = byteText(piece);
    const id = pieces.length;
    pieces.push(byte ?? piece.replace(/^\n(<\/?s>)\n$/, '$1'));
    // ids 0..2 are <unk>, <s>, </s> in llama2c's tokenizers.
    if (byte === null && id > 2) wordIds.push(id);
    offset += 8 + length;
  }
  return { pieces, wordIds };
}
