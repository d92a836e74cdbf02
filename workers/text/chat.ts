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
import { Template } from '@huggingface/jinja';
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

export class ChatTemplate {
  private readonly template: Template;

  constructor(
    readonly source: string,
    readonly bosToken = '',
    readonly eosToken = '',
  ) {
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
    let source = config.chat_template;
    if (Array.isArray(source)) source = (source as { name?: string; template?: string }[]).find((t) => t.name === 'default')?.template;
    if (source === undefined || source === null) return undefined;
    if (typeof source !== 'string') throw new WhittleError('BAD_MODEL', 'tokenizer_config.json: chat_template is not a string');
    return new ChatTemplate(source, tokenText(config.bos_token) ?? '', tokenText(config.eos_token) ?? '');
  }

  /** The prompt text for `messages`; with `addGenerationPrompt` (default) it ends where the assistant's reply starts. */
  render(messages: readonly ChatMessage[], options: { addGenerationPrompt?: boolean } = {}): string {
    if (messages.length === 0) throw new WhittleError('INVALID_ARGUMENT', 'a chat needs at least one message');
    for (const m of messages) {
      if (typeof m?.role !== 'string' || typeof m.content !== 'string') throw new WhittleError('INVALID_ARGUMENT', 'chat messages need a string role and content');
    }
    try {
      return this.template.render({
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
      });
    } catch (err) {
      // Templates raise on conversations they do not accept (e.g. roles out of order).
      throw new WhittleError('INVALID_ARGUMENT', `the chat template rejected the messages: ${err instanceof Error ? err.message : String(err)}`, {}, { cause: err });
    }
  }
}
