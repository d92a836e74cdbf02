/**
 * workers/text/tokenizer.ts TextTokenizer: tokenizer.json + tokenizer_config.json of the
 * project's models (mostly the small stories one: a 2 MB SmolLM2 tokenizer takes ~100 ms to
 * build) mutated structurally, then used: encode and decode of hostile text.
 */
import { TextTokenizer } from '../../../workers/text/tokenizer.ts';
import { hostileString } from '../hostile.ts';
import { mutateJsonValue } from '../json.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { keysOf, llama3TokenizerJson, seedJson } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

interface Input {
  tokenizer: unknown;
  config: object;
  text: string;
  ids: number[];
}

interface Seed {
  tokenizer: unknown;
  config: unknown;
  bytes: number;
  keys: string[];
  configKeys: string[];
}

function seedOf(model: string | 'llama3'): Seed {
  const tokenizer = model === 'llama3' ? llama3TokenizerJson('tokenizer.json') : seedJson(model, 'tokenizer.json');
  const config = model === 'llama3' ? llama3TokenizerJson('tokenizer_config.json') : seedJson(model, 'tokenizer_config.json');
  return { tokenizer, config, bytes: JSON.stringify(tokenizer).length, keys: keysOf(tokenizer), configKeys: keysOf(config) };
}

export function tokenizerJsonTarget(): FuzzTarget<Input> {
  let small: Seed;
  let large: Seed;
  return {
    name: 'tokenizer-json',
    allocFactor: 16,
    load() {
      small = seedOf('stories-baseline');
      large = seedOf('llama3');
    },
    generate(rng: Rng) {
      const s = chance(rng, 0.01) ? large : small;
      const tokenizer = chance(rng, 0.9) ? mutateJsonValue(rng, s.tokenizer, { keys: s.keys }).value : s.tokenizer;
      const config = chance(rng, 0.3) ? mutateJsonValue(rng, s.config, { keys: s.configKeys }).value : s.config;
      // Short text: BPE over one unsplit word is quadratic in the library (100k characters take seconds), which is the library's cost on any tokenizer, not a parsing hazard.
      const text = chance(rng, 0.5) ? 'Once upon a time, there was a little girl.' : hostileString(rng).slice(0, 2000);
      const ids = Array.from({ length: int(rng, 0, 8) }, () =>
        chance(rng, 0.8) ? int(rng, 0, 600) : pick(rng, [-1, 1e9, 0.5, NaN, 2 ** 32]),
      );
      return {
        input: { tokenizer, config: (typeof config === 'object' && config !== null ? config : {}) as object, text, ids },
        bytes: s.bytes,
        kind: s === large ? 'smollm2' : 'stories',
      };
    },
    run({ tokenizer, config, text, ids }) {
      const tok = TextTokenizer.fromJson(tokenizer, config);
      const encoded = tok.encode(text);
      expectThat(
        encoded.every((id) => Number.isInteger(id) && id >= 0),
        'encode returned a non-id',
      );
      expectThat(typeof tok.decode(encoded) === 'string', 'decode of its own ids failed');
      tok.decode(ids);
      const stream = tok.streamDecoder([]);
      for (const id of encoded.slice(0, 16)) stream.push(id);
    },
  };
}
