/**
 * Streaming text is exact: the pieces a TextStreamer emits (then its finish() tail) equal what
 * the tokenizer itself decodes for prompt + output minus what it decodes for the prompt, cut
 * before the first stop string; nothing emitted is ever taken back. Checked against the
 * tokenizer's own full decode (the reference) for both tokenizer kinds: stories260K's llama2.c
 * tok512.bin (converted) and stories-layerskip's tokenizer.json (loaded as is), on prompts
 * ending mid-word and after a space, byte-fallback pieces, multi-byte characters split across
 * tokens, broken UTF-8, special tokens, stop strings, and random id sequences; then end to end
 * through the engine.
 */
import { describe, expect, it } from 'vitest';
import { createRng } from '../../core/random.ts';
import type { GenerateOptions, TextEvent } from '../../core/text-types.ts';
import { llama2cTokenizerToHf, readLlama2cTokenizer } from '../../models/import/llama2c/tokenizer.ts';
import { readLocalModelFile } from '../../models/local.ts';
import { loadModel } from '../../sdk/cli/load.ts';
import { loadOrt } from '../ort/runtime.ts';
import { TextEngine } from './engine.ts';
import { textModelFromLlama2c } from './model.ts';
import { TextStreamer } from './streamer.ts';
import { TextTokenizer } from './tokenizer.ts';

const TOKENIZERS = {
  'llama2.c tok512.bin': () => TextTokenizer.fromJson(llama2cTokenizerToHf(readLlama2cTokenizer(readLocalModelFile('stories260K', 'tok512.bin'), 512))),
  'tokenizer.json': () => TextTokenizer.fromJson(JSON.parse(new TextDecoder().decode(readLocalModelFile('stories-layerskip', 'tokenizer.json'))) as unknown),
};

/**
 * The reference: the tokenizer's full decode of prompt + output minus that of the prompt (a
 * prompt ending inside a character contributes its stable text only: the trailing U+FFFD of
 * its incomplete bytes is the character the output completes), cut before the first stop string.
 */
function reference(tok: TextTokenizer, prompt: readonly number[], output: readonly number[], stops: readonly string[] = []): string {
  const full = tok.decode([...prompt, ...output]);
  const head = tok.decode(prompt).replace(/\uFFFD+$/, '');
  expect(full.startsWith(head), 'the prompt decodes to a prefix of prompt + output').toBe(true);
  let text = full.slice(head.length);
  const cuts = stops.filter((s) => s.length > 0).map((s) => text.indexOf(s)).filter((i) => i >= 0);
  if (cuts.length > 0) text = text.slice(0, Math.min(...cuts));
  return text;
}

/**
 * Streams `output` after `prompt`, checking after every token that what was emitted so far is a
 * prefix of the reference for the tokens so far (never ahead, never taken back), and at the end
 * that emitted + tail is the reference. Returns the pieces and the tail.
 */
function stream(tok: TextTokenizer, prompt: readonly number[], output: readonly number[], stops: readonly string[] = []): { pieces: string[]; tail: string; used: number; stopped: boolean } {
  const streamer = new TextStreamer(tok, prompt, stops);
  const pieces: string[] = [];
  let used = 0;
  let stopped = false;
  for (const id of output) {
    const r = streamer.push(id);
    pieces.push(r.text);
    used++;
    const sofar = pieces.join('');
    const ref = reference(tok, prompt, output.slice(0, used), stops);
    expect(ref.startsWith(sofar), `after ${used} tokens: emitted ${JSON.stringify(sofar)} is not a prefix of ${JSON.stringify(ref)}`).toBe(true);
    if (r.stopped) {
      stopped = true;
      expect(sofar).toBe(ref); // cut exactly before the stop string
      break;
    }
  }
  const tail = streamer.finish();
  expect(pieces.join('') + tail).toBe(reference(tok, prompt, output.slice(0, used), stops));
  expect(streamer.text).toBe(pieces.join('') + tail);
  return { pieces, tail, used, stopped };
}

describe.each(Object.entries(TOKENIZERS))('TextStreamer with the %s tokenizer', (_name, load) => {
  const tok = load();
  const BOS = 1;
  const id = (piece: string) => {
    const found = tok.tokenToId(piece);
    if (found === undefined) throw new Error(`no token ${piece}`);
    return found;
  };
  const bytes = (s: string) => [...new TextEncoder().encode(s)].map((b) => id(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`));
  const text = (s: string) => [BOS, ...tok.encode(s)];

  /** Ids of `head` (BOS first) and of what follows it in the encoding of `head + rest`. */
  const split = (head: string, rest: string): [number[], number[]] => {
    const all = text(head + rest);
    const prompt = text(head);
    expect(all.slice(0, prompt.length), `${head} | ${rest} tokenizes at the seam`).toEqual(prompt);
    return [prompt, all.slice(prompt.length)];
  };

  it('keeps the leading space of the first generated token (prompt ending after a word)', () => {
    const [prompt, output] = split('Once upon a time, there was a', ' girl named Lily.');
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces.join('') + tail).toBe(' girl named Lily.');
    expect(pieces[0]).toBe(' g'); // '▁g': the space the old streamer dropped
  });

  it('continues a word when the prompt ends mid-word', () => {
    const prompt = text('Once upon a time, there was a lit');
    const output = [id('t'), id('le'), id('▁g'), ...text('irl').slice(2)];
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces.slice(0, 3)).toEqual(['t', 'le', ' g']);
    expect(tok.decode(prompt) + pieces.join('') + tail).toBe(tok.decode([...prompt, ...output]));
  });

  it('after a prompt ending in a space, a token starting with a space keeps it', () => {
    const prompt = text('Once upon a time, there was a ');
    expect(prompt.at(-1)).toBe(id('▁'));
    const output = [id('▁d'), id('o'), id('g')];
    const { pieces } = stream(tok, prompt, output);
    expect(pieces).toEqual([' d', 'o', 'g']);
    expect(tok.decode([...prompt, ...output])).toBe('Once upon a time, there was a  dog');
  });

  it('holds a multi-byte character split across byte-fallback pieces until it is complete', () => {
    const prompt = text('Lily saw');
    const output = [id('▁'), ...bytes('日'), ...bytes('😀'), id('▁'), ...bytes('é'), id('g')];
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces).toEqual([' ', '', '', '日', '', '', '', '😀', ' ', '', 'é', 'g']);
    expect(pieces.join('') + tail).toBe(' 日😀 ég');
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    expect(tail).toBe('');
  });

  it('emits broken UTF-8 as the tokenizer decodes it, once it cannot complete', () => {
    const prompt = text('Tom');
    // E2 then a plain piece: the E2 can never complete; C3 + E2 96 81: C3 is broken by E2.
    const output = [id('<0xE2>'), id('▁'), id('<0xC3>'), id('<0xE2>'), id('<0x96>'), id('<0x81>'), id('▁')];
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces[0]).toBe(''); // E2 alone: held (it may still complete)
    expect(pieces.join('') + tail).toBe('\uFFFD \uFFFD▁ ');
  });

  it('ends with an incomplete character: the tail carries what the tokenizer decodes', () => {
    const prompt = text('Tom');
    const output = [id('▁'), ...bytes('日').slice(0, 2)];
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces.join('')).toBe(' ');
    expect(tail).toBe('\uFFFD');
  });

  it('a prompt of ids ending inside a character: the token that completes it emits the character', () => {
    const e = bytes('日');
    const prompt = [BOS, ...tok.encode('Tom'), id('▁'), e[0]!, e[1]!];
    const output = [e[2]!, id('g')];
    const { pieces, tail } = stream(tok, prompt, output);
    expect(pieces[0]).toBe('日');
    expect(pieces.join('') + tail).toBe(reference(tok, prompt, output));
  });

  it('special tokens in the prompt or the output do not eat a leading space', () => {
    const prompt = [BOS, ...tok.encode('Tom'), 2, 2, 2, 2, 2, 2];
    const output = [id('▁g'), id('o'), 1, id('▁d'), 2, 0, id('▁'), id('g')];
    stream(tok, prompt, output);
    stream(tok, [BOS], output);
    stream(tok, [], output);
  });

  it('cuts before a stop string, holding back a possible start of one and never emitting it', () => {
    const [prompt, output] = split('Once upon a time', ', there was a girl.\n\nThe end.');
    const { pieces, stopped, used } = stream(tok, prompt, output, ['\n\n']);
    expect(stopped).toBe(true);
    expect(pieces.join('')).toBe(', there was a girl.');
    expect(pieces.at(-2)).toBe(''); // the first '\n' was held back: it could have been (and was) the stop string's start
    expect(used).toBe(output.indexOf(13) + 2);
    // a stop string spanning several tokens; one that starts earlier than another completes
    expect(stream(tok, prompt, output, ['was a gi', 'girl']).pieces.join('')).toBe(', there ');
    expect(stream(tok, prompt, output, ['girl.\n\nThe e', 'zzz']).pieces.join('')).toBe(', there was a ');
  });

  it('a possible stop string that never completes comes out at the end (the tail)', () => {
    const [prompt, output] = split('Once upon a time', ', there was a girl.\n');
    const { pieces, tail, stopped } = stream(tok, prompt, output, ['\n\n']);
    expect(stopped).toBe(false);
    expect(pieces.join('')).toBe(', there was a girl.');
    expect(tail).toBe('\n');
  });

  it('peek gives rejected drafts their text in context (leading space kept), without consuming them', () => {
    const s = new TextStreamer(tok, text('Once upon a time, there was a little'), []);
    const drafts = [id('▁d'), id('o'), id('g')];
    expect(s.peek(drafts)).toBe(' dog');
    expect(s.push(drafts[0]!).text).toBe(' d');
  });

  it('random id sequences (bytes, pieces, specials) and random stop strings keep the invariant', () => {
    const rng = createRng(11);
    const vocab = 512;
    const byteIds = bytes('日本 é 😀 ü ß');
    const randomIds = (n: number) =>
      Array.from({ length: n }, () => {
        const r = rng();
        if (r < 0.35) return byteIds[Math.floor(rng() * byteIds.length)]!; // parts of real characters, often out of order
        if (r < 0.45) return 3 + Math.floor(rng() * 256); // any byte piece
        if (r < 0.5) return Math.floor(rng() * 3); // <unk>, <s>, </s>
        return Math.floor(rng() * vocab);
      });
    for (let trial = 0; trial < 300; trial++) {
      const prompt = trial % 3 === 0 ? [BOS, ...randomIds(Math.floor(rng() * 8))] : [BOS, ...tok.encode('Lily and Tom'), ...randomIds(Math.floor(rng() * 3))];
      const output = randomIds(1 + Math.floor(rng() * 24));
      const free = reference(tok, prompt, output);
      const stops: string[] = [];
      if (free.length > 2 && trial % 2 === 0) {
        const at = Math.floor(rng() * (free.length - 1));
        stops.push(free.slice(at, at + 1 + Math.floor(rng() * 3)));
      }
      stream(tok, prompt, output, stops);
    }
  });
});

describe('streamed text through the engine equals the tokenizer decode of prompt + output', async () => {
  const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
  const engines = {
    stories260K: await TextEngine.create(ort, 'wasm', textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin'))),
    'stories-layerskip': await TextEngine.create(ort, 'wasm', loadModel('stories-layerskip'), { plan: { layers: [0, 1, 2, 3, 4, 5, 6, 7], exit: 2 } }),
  };

  const cases: ['stories260K' | 'stories-layerskip', string, GenerateOptions][] = [
    ['stories260K', 'Once upon a time, there was a little', {}],
    ['stories260K', 'Once upon a time, there was a lit', {}],
    ['stories260K', 'Once upon a time, there was a ', { temperature: 1, seed: 3 }],
    ['stories260K', 'Lily saw a', { stopStrings: ['.'] }],
    ['stories-layerskip', 'Once upon a time, there was a little', { speculate: { exit: 2, draft: 3 } }],
    ['stories-layerskip', 'Tom had a red', { temperature: 0.9, seed: 5, speculate: { exit: 2, draft: 2 }, stopStrings: ['\n', 'ball.'] }],
  ];
  it.each(cases)('%s: "%s" %j', async (model, prompt, extra) => {
    const engine = engines[model];
    const events: TextEvent[] = [];
    for await (const ev of engine.generate(prompt, { maxTokens: 40, greedy: extra.temperature === undefined, stopTokens: [], ...extra })) events.push(ev);
    const done = events.at(-1)!;
    if (done.type !== 'done') throw new Error('no done event');
    const streamed = events.flatMap((e) => (e.type === 'token' ? [e.text] : [])).join('');
    const promptIds = [engine.config.bosTokenId, ...engine.tokenizer.encode(prompt)];
    const stops = extra.stopStrings ?? [];
    expect(streamed + done.tail).toBe(done.text);
    expect(done.text).toBe(reference(engine.tokenizer, promptIds, done.tokens, stops));
    if (done.stats.stopReason === 'stop-string') expect(done.tail).toBe('');
    if (prompt === 'Once upon a time, there was a little') expect(done.text.startsWith(' girl')).toBe(true);
    if (prompt === 'Lily saw a') expect(done.stats.stopReason).toBe('stop-string');
    if (extra.speculate) expect(events.some((e) => e.type === 'token' && e.rejected)).toBe(true);
    // Rejected drafts stood where their replacement stands: their text in that context.
    events.forEach((e, i) => {
      if (e.type !== 'token' || !e.rejected) return;
      const before = reference(engine.tokenizer, promptIds, done.tokens.slice(0, i));
      expect(e.rejected.text).toBe(reference(engine.tokenizer, promptIds, [...done.tokens.slice(0, i), ...e.rejected.tokens]).slice(before.length));
    });
  });
});
