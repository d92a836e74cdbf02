/**
 * Demo-only reader for llama2.c's tokenizer.bin (int32 max_token_length, then per token:
 * float32 score, int32 length, bytes) with run.c's encode: start from characters, merge the
 * best-scoring adjacent pair until none merges. Enough to show token strings in the demo.
 */
export interface Tok512 {
  pieces: string[];
  encode(text: string): number[];
  decode(id: number): string;
}

export function readTok512(buffer: ArrayBuffer, vocabSize: number): Tok512 {
  const view = new DataView(buffer);
  const utf8 = new TextDecoder();
  const pieces: string[] = [];
  const scores: number[] = [];
  let off = 4;
  for (let i = 0; i < vocabSize; i++) {
    scores.push(view.getFloat32(off, true));
    const len = view.getInt32(off + 4, true);
    pieces.push(utf8.decode(new Uint8Array(buffer, off + 8, len)));
    off += 8 + len;
  }
  const index = new Map(pieces.map((p, i) => [p, i]));
  const decode = (id: number) => {
    const p = pieces[id] ?? '';
    const byte = /^<0x([0-9A-F]{2})>$/.exec(p);
    return byte ? String.fromCharCode(parseInt(byte[1]!, 16)) : p;
  };
  const encode = (text: string) => {
    const ids: number[] = [];
    for (const ch of ` ${text}`) {
      const id = index.get(ch);
      if (id !== undefined) ids.push(id);
      else for (const b of new TextEncoder().encode(ch)) ids.push(b + 3); // byte fallback: <0x00> is id 3
    }
    for (;;) {
      let best = -Infinity;
      let at = -1;
      let merged = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const id = index.get(pieces[ids[i]!]! + pieces[ids[i + 1]!]!);
        if (id !== undefined && scores[id]! > best) {
          best = scores[id]!;
          at = i;
          merged = id;
        }
      }
      if (at < 0) return ids;
      ids.splice(at, 2, merged);
    }
  };
  return { pieces, encode, decode };
}
