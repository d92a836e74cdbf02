import { describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { loadOrt } from '../ort/runtime.ts';
import { ChatTemplate } from './chat.ts';
import type { TextEvent } from '../../core/text-types.ts';
import { TextEngine } from './engine.ts';
import { textModelFromHf } from './model.ts';

/** A question/answer template in the style of Zephyr's, written for the TinyStories vocabulary. */
const TEMPLATE =
  "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n{% elif m.role == 'user' %}Question: {{ m.content }}\n{% elif m.role == 'assistant' %}Answer: {{ m.content }}{{ eos_token }}\n{% else %}{{ raise_exception('unknown role ' + m.role) }}{% endif %}{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}";

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const files = (tokenizerConfig?: object): Record<string, ArrayBuffer> => {
  const read = (n: string) => readLocalModelFile('stories-layerskip', n);
  const out: Record<string, ArrayBuffer> = { 'config.json': read('config.json'), 'model.safetensors': read('model.safetensors'), 'tokenizer.json': read('tokenizer.json') };
  if (tokenizerConfig) out['tokenizer_config.json'] = new TextEncoder().encode(JSON.stringify(tokenizerConfig)).buffer as ArrayBuffer;
  return out;
};
const done = async (it: AsyncIterable<TextEvent>) => {
  let last: TextEvent | undefined;
  for await (const ev of it) last = ev;
  if (last?.type !== 'done') throw new Error('no done event');
  return last;
};

describe('chat templates', () => {
  it('renders the tokenizer_config template as transformers would (special tokens from the config)', () => {
    const chat = ChatTemplate.fromTokenizerConfig({ chat_template: TEMPLATE, bos_token: '<s>', eos_token: { content: '</s>' } })!;
    const messages = [
      { role: 'system', content: 'You tell short stories.' },
      { role: 'user', content: 'Who is Lily?' },
      { role: 'assistant', content: 'A girl.' },
      { role: 'user', content: 'What does she like?' },
    ];
    expect(chat.render(messages)).toBe('<s>You tell short stories.\nQuestion: Who is Lily?\nAnswer: A girl.</s>\nQuestion: What does she like?\nAnswer:');
    expect(chat.render(messages.slice(0, 2), { addGenerationPrompt: false })).toBe('<s>You tell short stories.\nQuestion: Who is Lily?\n');
    // named templates: the 'default' one
    const named = ChatTemplate.fromTokenizerConfig({ chat_template: [{ name: 'tool_use', template: 'x' }, { name: 'default', template: '{{ messages[0].content }}' }] })!;
    expect(named.render([{ role: 'user', content: 'hi' }])).toBe('hi');
    expect(ChatTemplate.fromTokenizerConfig({})).toBeUndefined();
  });

  it('generate() takes a conversation: the template writes BOS, the prompt is its tokens', async () => {
    const engine = await TextEngine.create(ort, 'wasm', textModelFromHf(files({ chat_template: TEMPLATE, bos_token: '<s>', eos_token: '</s>' })));
    const messages = [{ role: 'user', content: 'Who is Lily?' }];
    const ids = engine.tokenizer.encode('<s>Question: Who is Lily?\nAnswer:');
    expect(ids[0]).toBe(engine.config.bosTokenId); // '<s>' in the text is the special token, not three characters
    expect(ids.filter((t) => t === engine.config.bosTokenId)).toHaveLength(1);
    const chat = await done(engine.generate(messages, { maxTokens: 12, greedy: true, stopTokens: [] }));
    const plain = await done(engine.generate(ids, { maxTokens: 12, greedy: true, stopTokens: [], addBos: false }));
    expect(chat.stats.promptTokens).toBe(ids.length);
    expect(chat.tokens).toEqual(plain.tokens);
    await expect(done(engine.generate([{ role: 'robot', content: 'beep' }]))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await engine.dispose();
  });

  it('a model without a template refuses a conversation; a template that does not parse is BAD_MODEL', async () => {
    const engine = await TextEngine.create(ort, 'wasm', textModelFromHf(files({ bos_token: '<s>' })));
    expect(engine.chatTemplate).toBeUndefined();
    await expect(done(engine.generate([{ role: 'user', content: 'hi' }]))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await engine.dispose();
    expect(() => textModelFromHf(files({ chat_template: '{% for m in messages %}' }))).toThrow(expect.objectContaining({ code: 'BAD_MODEL' }));
  });
});
