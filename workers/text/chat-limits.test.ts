/**
 * Chat templates come with the model, from any host: one that loops for ever, builds a
 * billion-element range() or is malformed gives a typed error within its time limit (fuzz
 * findings of scripts/fuzz/targets/chat-template.ts, minimized).
 */
import { describe, expect, it } from 'vitest';
import { CHAT_MAX_RANGE, ChatTemplate } from './chat.ts';

const user = [{ role: 'user', content: 'hi' }];

/** Renders and returns [error, elapsed ms]. */
function timed(source: string, timeLimitMs?: number): [unknown, number] {
  const t0 = performance.now();
  try {
    new ChatTemplate(source).render(user, timeLimitMs === undefined ? {} : { timeLimitMs });
    return [undefined, performance.now() - t0];
  } catch (err) {
    return [err, performance.now() - t0];
  }
}

describe('chat template limits', () => {
  it('a template that loops (practically) for ever stops at its time limit with BAD_MODEL', () => {
    const [err, ms] = timed('{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}', 50);
    expect(err).toMatchObject({ code: 'BAD_MODEL', details: { reason: 'time-limit', timeLimitMs: 50 } });
    expect(ms).toBeLessThan(2000);
  });

  it('loops with empty bodies count too (they call nothing but the block evaluator)', () => {
    const [err, ms] = timed(
      '{% for m in messages %}{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}{% endfor %}',
      50,
    );
    expect(err).toMatchObject({ code: 'BAD_MODEL', details: { reason: 'time-limit' } });
    expect(ms).toBeLessThan(2000); // 110 s before the limit existed
  });

  it('the default limit applies without options', () => {
    const [err] = timed(
      '{% for i in range(10000) %}{% for j in range(10000) %}{% for k in range(10000) %}{% endfor %}{% endfor %}{% endfor %}',
    );
    expect(err).toMatchObject({ code: 'BAD_MODEL', details: { reason: 'time-limit', timeLimitMs: 1000 } });
  });

  it('range() past CHAT_MAX_RANGE is refused before the list is built', () => {
    for (const source of [
      '{% for i in range(1000000000) %}x{% endfor %}',
      '{% for i in range(-1, 1000000000000, 1) %}{% endfor %}',
      "{% for i in range('a') %}{% endfor %}",
    ]) {
      const [err, ms] = timed(source);
      expect(err).toMatchObject({ code: 'BAD_MODEL', details: { reason: 'range' } });
      expect(ms).toBeLessThan(1000);
    }
    expect(new ChatTemplate(`{{ range(${CHAT_MAX_RANGE}) | length }}`).render(user)).toBe(String(CHAT_MAX_RANGE));
    expect(new ChatTemplate('{{ range(5, 0, -2) | join(",") }}').render(user)).toBe('5,3,1');
  });

  it('the interpreter is left as it was after a render, even one that failed', () => {
    timed('{% for i in range(10000) %}{% for j in range(10000) %}{{ j }}{% endfor %}{% endfor %}', 10);
    expect(new ChatTemplate('{% for m in messages %}{{ m.content }}{% endfor %}').render(user)).toBe('hi');
  });

  it('a malformed tokenizer_config.json is BAD_MODEL, not a TypeError', () => {
    expect(() => ChatTemplate.fromTokenizerConfig({ chat_template: [null, { name: 'default', template: 'x' }] })).not.toThrow();
    expect(
      ChatTemplate.fromTokenizerConfig({ chat_template: [null, { name: 'default', template: '{{ messages[0].content }}' }] })!.render(user),
    ).toBe('hi');
    expect(() => ChatTemplate.fromTokenizerConfig(null as unknown as Record<string, unknown>)).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL' }),
    );
    expect(() => ChatTemplate.fromTokenizerConfig({ chat_template: [{ name: 'default', template: 5 }] })).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL' }),
    );
  });

  it('a template of 56 MB (which took over 5 s to parse) is refused unparsed', () => {
    const t0 = performance.now();
    expect(() => new ChatTemplate('{{ x }}'.repeat(8_000_000))).toThrow(
      expect.objectContaining({ code: 'BAD_MODEL', details: expect.objectContaining({ reason: 'size' }) }),
    );
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
