/**
 * Chat templates: a model's `chat_template` (Jinja, from tokenizer_config.json) rendered with
 * `@huggingface/jinja`, the implementation transformers.js uses, so a conversation becomes the
 * exact prompt text the model was trained on. Tokenizing the result (without adding special
 * tokens: the template writes them) gives the prompt ids, like `apply_chat_template` in
 * transformers.
 *
 * @example
 * const chat = ChatTemplate.fromTokenizerConfig(JSON.parse(configText));
 * const text = chat?.render([{ role: 'user', content: 'Tell me a story' }]);
 */
import { Interpreter, Template } from '@huggingface/jinja';
import { WhittleError } from '../../core/errors.ts';
import type { ChatMessage } from '../../core/text-types.ts';

/** A public type (core/text-types.ts), re-exported for the engine's modules. */
export type { ChatMessage } from '../../core/text-types.ts';

/** tokenizer_config.json writes special tokens as strings or as `{ content }` objects. */
function tokenText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') return (value as { content: string }).content;
  return undefined;
}

/**
 * Limits on one render. Chat templates come with the model (tokenizer_config.json from any URL),
 * so one may loop for ever (`range` nested deep) or ask for a billion-element list; Jinja has no
 * limits of its own, and a synchronous render cannot be interrupted from outside.
 */
export const CHAT_TIME_LIMIT_MS = 1000;
/**
 * Longest `range()` a template may build. Real templates iterate over messages, not ranges; and a
 * `for` prepares every iteration before running one (~5 us each, unseen by the deadline), so the
 * bound also bounds how late the deadline can be noticed (~50 ms).
 */
export const CHAT_MAX_RANGE = 10_000;
/** Longest template source: published ones are under 20 KB (tool-use templates included). */
export const CHAT_MAX_TEMPLATE_CHARS = 1 << 20;

/** Interpreter steps between two looks at the clock (performance.now() costs ~50 ns, a step microseconds). */
const CLOCK_EVERY = 16;

function timeLimit(ms: number): WhittleError {
  return new WhittleError('BAD_MODEL', `the chat template ran past its time limit of ${ms} ms`, { reason: 'time-limit', timeLimitMs: ms });
}

/**
 * Refuses a range() longer than CHAT_MAX_RANGE before Jinja builds it: range(1e10) would fill
 * memory in one call, between two statements, where no deadline can see it. Same arguments as
 * Jinja's range (start, stop, step); NaN lengths (range('a'), range(1e999)) are refused too.
 */
function checkRange(args: readonly unknown[]): void {
  const [a, b, c] = args as number[];
  const [from, to] = b === undefined ? [0, a] : [a, b];
  const step = c ?? 1;
  if (step === 0) return; // Jinja raises its own error
  const length = Math.max(0, Math.ceil((Number(to) - Number(from)) / Number(step)));
  if (!(length <= CHAT_MAX_RANGE)) {
    throw new WhittleError('BAD_MODEL', `the chat template asks for range() of ${length} items (at most ${CHAT_MAX_RANGE})`, { reason: 'range', length });
  }
}

/** A Jinja function value, as the interpreter holds it: `value` is called with runtime values. */
interface JinjaFunction {
  value: (args: { value: unknown }[], scope: unknown) => unknown;
}

/** The interpreter's methods the deadline hooks into (evaluateBlock is private in its types). */
type Hooked = Record<'evaluate' | 'evaluateBlock', (this: Interpreter, ...args: unknown[]) => unknown>;

/**
 * Runs `render` with a deadline checked inside the interpreter, for the duration of this
 * synchronous call only (restored after): `evaluate`, which every statement and expression goes
 * through, and `evaluateBlock`, which every loop iteration goes through even when its body is
 * empty (a `for` over 100,000 items with an empty body calls nothing else, for seconds).
 * Template.render instantiates this same exported class. The first `evaluate` receives the
 * render's global environment, whose range() is then wrapped by checkRange (each render builds
 * its own globals, so nothing outlives the call).
 */
function withDeadline<T>(timeLimitMs: number, render: () => T): T {
  const proto = Interpreter.prototype as unknown as Hooked;
  const originals = { evaluate: proto.evaluate, evaluateBlock: proto.evaluateBlock };
  const deadline = performance.now() + timeLimitMs;
  let steps = 0;
  const tick = () => {
    if (++steps % CLOCK_EVERY === 0 && performance.now() > deadline) throw timeLimit(timeLimitMs);
  };
  proto.evaluate = function (this: Interpreter, ...args: unknown[]) {
    if (steps === 0) {
      const range = (args[1] as { lookupVariable(name: string): unknown }).lookupVariable('range') as JinjaFunction;
      const build = range.value;
      range.value = (rangeArgs, scope) => {
        checkRange(rangeArgs.map((x) => x.value));
        return build(rangeArgs, scope);
      };
    }
    tick();
    return originals.evaluate.apply(this, args);
  };
  if (typeof originals.evaluateBlock === 'function') {
    proto.evaluateBlock = function (this: Interpreter, ...args: unknown[]) {
      tick();
      return originals.evaluateBlock.apply(this, args);
    };
  }
  try {
    return render();
  } finally {
    proto.evaluate = originals.evaluate;
    proto.evaluateBlock = originals.evaluateBlock;
  }
}

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly bosToken = '',
    readonly eosToken = '',
  ) {
    // Parsing is linear but not fast (~5 s for 50 MB): a template far past any real one is refused unread.
    if (source.length > CHAT_MAX_TEMPLATE_CHARS) {
      throw new WhittleError('BAD_MODEL', `the chat template is ${source.length} characters (at most ${CHAT_MAX_TEMPLATE_CHARS})`, { reason: 'size', length: source.length });
    }
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new WhittleError('BAD_MODEL', `the chat template does not parse: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }

  /**
   * The template in a parsed tokenizer_config.json, or undefined when it has none. A list of
   * named templates (`[{ name, template }]`, as some models ship) yields the one named 'default'.
   */
  static fromTokenizerConfig(config: Record<string, unknown>): ChatTemplate | undefined {
    // Parsed JSON from the model folder: anything may be here, not only what the type says.
    if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new WhittleError('BAD_MODEL', 'tokenizer_config.json is not a JSON object');
    let source = config.chat_template;
    if (Array.isArray(source)) {
      const named = (source as unknown[]).find((t): t is { template?: unknown } => typeof t === 'object' && t !== null && (t as { name?: unknown }).name === 'default');
      source = named?.template;
    }
    if (source === undefined || source === null) return undefined;
    if (typeof source !== 'string') throw new WhittleError('BAD_MODEL', 'tokenizer_config.json: chat_template is not a string');
    return new ChatTemplate(source, tokenText(config.bos_token) ?? '', tokenText(config.eos_token) ?? '');
  }

  /**
   * The prompt text for `messages`; with `addGenerationPrompt` (default) it ends where the
   * assistant's reply starts. A template that runs past `timeLimitMs` (default
   * CHAT_TIME_LIMIT_MS) or builds a range() longer than CHAT_MAX_RANGE is a BAD_MODEL error
   * (`details.reason` 'time-limit' or 'range').
   */
  render(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean; timeLimitMs?: number } = {}): string {
    if (messages.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'a chat needs at least one message');
    for (const m of messages) {
      if (typeof m?.role !== 'string' || typeof m.content !== 'string') throw new WhittleError('INVALID_ARGUMENT', 'chat messages need a string role and content');
    }
    const limit = options.timeLimitMs ?? CHAT_TIME_LIMIT_MS;
    if (!(limit > 0)) throw new WhittleError('INVALID_ARGUMENT', `timeLimitMs must be positive, got ${limit}`);
    try {
      return withDeadline(limit, () =>
        this.template.render({
          messages,
          add_generation_prompt: options.addGenerationPrompt ?? true,
          bos_token: this.bosToken,
          eos_token: this.eosToken,
        }),
      );
    } catch (err) {
      if (err instanceof WhittleError) throw err;
      // Templates raise on conversations they do not accept (e.g. roles out of order).
      throw new WhittleError('INVALID_ARGUMENT', `the chat template rejected the messages: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }
}
