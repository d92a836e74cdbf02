/**
 * workers/text/chat.ts ChatTemplate: tokenizer_config.json's chat_template (SmolLM2's real one,
 * ChatML and a Zephyr-style one) mutated at the character level, configs mutated structurally,
 * and hostile templates assembled from pieces: loops that never end, ranges of billions,
 * recursion, output doubling, huge numbers and raised exceptions; over hostile conversations.
 * Renders run with a 25 ms limit (the default is 1 s) so 10,000 cases stay quick.
 */
import { ChatTemplate } from '../../../workers/text/chat.ts';
import type { ChatMessage } from '../../../core/text-types.ts';
import { hostileString, longString } from '../hostile.ts';
import { mutateJsonValue } from '../json.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { llama3TokenizerJson } from '../seeds.ts';
import type { FuzzTarget } from '../target.ts';

interface Input {
  config: unknown;
  messages: unknown[];
}

const TIME_LIMIT_MS = 25;

const CHATML =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
const ZEPHYR =
  "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}{{ m.content }}\n{% elif m.role == 'user' %}Question: {{ m.content }}\n{% elif m.role == 'assistant' %}Answer: {{ m.content }}{{ eos_token }}\n{% else %}{{ raise_exception('unknown role ' + m.role) }}{% endif %}{% endfor %}{% if add_generation_prompt %}Answer:{% endif %}";

/** Pieces that hang, blow up or throw; combined and nested by hostileTemplate(). */
const BODIES = [
  '{{ m.content }}',
  '{% for i in range(1000000000) %}x{% endfor %}',
  '{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}',
  '{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}',
  '{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}',
  '{% for i in range(-1, 1000000000000, 1) %}{% endfor %}',
  "{% for i in range('a') %}{% endfor %}",
  '{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}',
  "{% set ns = namespace(s='xy') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
  '{{ 10 ** 10 ** 10 }}',
  '{{ 1 / 0 }}',
  '{{ messages[1000000] }}',
  "{{ raise_exception('refused') }}",
  '{{ messages | tojson }}',
  '{{ m.content | upper | lower | trim }}',
  '{{ (((((((((((((((((((((1))))))))))))))))))))) }}',
  '{% if m.role == "user" %}{{ m.content * 3 }}{% endif %}',
  '{{ m["content"][::-1] }}',
  '{{ m.content[1000000000:] }}',
];

function hostileTemplate(rng: Rng): string {
  let body = Array.from({ length: int(rng, 1, 3) }, () => pick(rng, BODIES)).join('');
  for (let d = int(rng, 0, 3); d > 0; d--) body = `{% for m in messages %}${body}{% endfor %}`;
  if (chance(rng, 0.1)) body = `${'{% if true %}'.repeat(2000)}x${'{% endif %}'.repeat(2000)}`;
  if (chance(rng, 0.05)) body = `{{ ${'('.repeat(5000)}1${')'.repeat(5000)} }}`;
  return body;
}

/** Character edits of a real template: cut, duplicated, tags broken. */
function mutateTemplate(rng: Rng, t: string): string {
  let s = t;
  for (let e = int(rng, 1, 4); e > 0; e--) {
    const at = int(rng, 0, s.length);
    const op = int(rng, 0, 4);
    if (op === 0) s = s.slice(0, at) + s.slice(at + int(rng, 1, 20));
    else if (op === 1)
      s = s.slice(0, at) + pick(rng, ['{%', '%}', '{{', '}}', '{#', 'endfor', '(', ')', '[', ']', "'", '|', '.']) + s.slice(at);
    else if (op === 2) s = s.slice(0, at) + pick(rng, BODIES) + s.slice(at);
    else if (op === 3) s = s.slice(0, at) + s.slice(at, at + int(rng, 1, 200)).repeat(int(rng, 2, 4)) + s.slice(at);
    else s = s.slice(0, at);
  }
  return s;
}

function messages(rng: Rng): unknown[] {
  const r = rng();
  if (r < 0.6) return [{ role: 'user', content: 'Tell me a story' }];
  if (r < 0.75)
    return Array.from({ length: int(rng, 1, 6) }, (_, i) => ({
      role: pick(rng, ['system', 'user', 'assistant', 'tool']),
      content: `turn ${i}`,
    }));
  if (r < 0.85) return [{ role: 'user', content: chance(rng, 0.5) ? hostileString(rng) : longString(rng, 1_000_000) }];
  if (r < 0.9) return Array.from({ length: 10_000 }, () => ({ role: 'user', content: 'x' }));
  return pick(rng, [[], [null], [{ role: 1, content: 'x' }], [{ role: 'user' }], [{ role: 'user', content: { a: 1 } }], ['user']]);
}

export function chatTemplateTarget(): FuzzTarget<Input> {
  let seeds: Record<string, unknown>[] = [];
  return {
    name: 'chat-template',
    allocFactor: 16,
    load() {
      const smol = llama3TokenizerJson('tokenizer_config.json') as Record<string, unknown>;
      seeds = [smol, { ...smol, chat_template: CHATML }, { chat_template: ZEPHYR, bos_token: '<s>', eos_token: { content: '</s>' } }];
    },
    generate(rng) {
      const seed = pick(rng, seeds);
      const r = rng();
      let config: unknown;
      let kind: string;
      if (r < 0.4) {
        config = { ...seed, chat_template: mutateTemplate(rng, String(seed.chat_template)) };
        kind = 'mutate-template';
      } else if (r < 0.75) {
        config = { ...seed, chat_template: hostileTemplate(rng) };
        kind = 'hostile-template';
      } else {
        config = mutateJsonValue(rng, seed, { keys: ['chat_template', 'bos_token', 'eos_token', 'name', 'template', 'content'] }).value;
        kind = 'mutate-config';
      }
      const msgs = messages(rng);
      return { input: { config, messages: msgs }, bytes: String(seed.chat_template).length, kind };
    },
    run({ config, messages: msgs }) {
      const chat = ChatTemplate.fromTokenizerConfig(config as Record<string, unknown>);
      chat?.render(msgs as ChatMessage[], { timeLimitMs: TIME_LIMIT_MS });
    },
  };
}
