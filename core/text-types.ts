/**
 * The text model's public option and event types: what crosses the worker boundary between the
 * SDK handle (sdk/text-model.ts) and the engine (workers/text/). Types only, on the ground floor,
 * so both sides (and the CLI, benches, tests) name one definition.
 *
 * @example
 * const options: GenerateOptions = { maxTokens: 64, temperature: 0.8, topP: 0.9, stopStrings: ['\n\n'] };
 * for await (const ev of lm.generate('Once upon a time', options)) {
 *   if (ev.type === 'token') out += ev.text;
 *   else out += ev.tail; // text held back to the end (see TextEvent)
 * }
 */

/**
 * How the next token is drawn from the logits.
 *
 * @example
 * const sampling: SamplingOptions = { temperature: 0.7, topK: 40, topP: 0.9, repetitionPenalty: 1.1, seed: 42 };
 */
export interface SamplingOptions {
  /** Always take the most likely token (same as temperature 0). */
  greedy?: boolean;
  /** Softmax temperature; 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (0 or absent: all). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or absent: all). */
  topP?: number;
  /** > 1 discourages tokens already in the history (CTRL paper rule: divide positive logits, multiply negative). */
  repetitionPenalty?: number;
  /** Seed for the PRNG; same seed, same logits -> same tokens. */
  seed?: number;
}

/**
 * One turn of a conversation, for models whose tokenizer_config.json has a chat template.
 *
 * @example
 * const { text } = await lm.complete([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Hi!' }] satisfies ChatMessage[]);
 */
export interface ChatMessage {
  role: string;
  content: string;
}

/**
 * Text (BOS is prepended), token ids (used as given), or a conversation for the model's chat template.
 *
 * @example
 * const prompts: Prompt[] = ['Once upon a time', [1, 403, 407], [{ role: 'user', content: 'Hi' }]];
 */
export type Prompt = string | readonly number[] | readonly ChatMessage[];

/**
 * Options of `generate()` and `complete()`: length, stops, sampling, abort, speculation.
 *
 * @example
 * const opts: GenerateOptions = { maxTokens: 64, stopStrings: ['\n\n'], temperature: 0.8, signal: AbortSignal.timeout(10_000) };
 * const { text } = await lm.complete('Once upon a time', opts);
 */
export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens to generate. Default 128. */
  maxTokens?: number;
  /** Token ids that end generation (not emitted). Default: the model's EOS. */
  stopTokens?: number[];
  /** Strings that end generation; the text is cut before them (never emitted, not even in part). */
  stopStrings?: string[];
  /**
   * Prepend the model's BOS token to the prompt. Default: as the model's tokenizer does (Llama and
   * llama2.c models start with BOS; Qwen and SmolLM tokenizers add none).
   */
  addBos?: boolean;
  /** Decode through the plan's early exit (drafts' path) instead of every kept layer. */
  exit?: boolean;
  /** Stops within one step (between segment runs); the iterator then throws WhittleError('ABORTED'). */
  signal?: AbortSignal;
  /**
   * Self-speculative decoding (LayerSkip): draft tokens through an early exit, verify them in one
   * pass of the later layers over the drafts' exit hidden states. Greedy output is exactly the
   * full-depth greedy output; sampled output follows the full-depth distribution (speculative
   * sampling's rejection rule). See `SpeculateOptions`.
   */
  speculate?: SpeculateOptions;
  /**
   * Dropout decoding: per step, an ensemble of members that each drop uncertain context tokens
   * relevant to the candidate token (through the attention mask), and a majority vote. With
   * `members: 0` or no marked context it is plain decoding, token for token. Not with `speculate`
   * or `exit`. See `DropoutOptions`.
   */
  dropout?: DropoutOptions;
}

/**
 * Dropout decoding settings (uncertainty-guided context-token dropout ensembles).
 *
 * Per marked context token i, the prefill projects its hidden state through the final norm and
 * head to P_i; its epistemic uncertainty is KL(P_i ‖ mean P). Each step, the base pass proposes
 * token y; the context tokens whose top-`topK` contains y are relevant; member m drops each
 * relevant token with probability q_i = minRate + (rates[m] - minRate) * norm(epistemic_i)
 * (norm: min-max over the marked tokens); members run batched over the shared cache and vote
 * (ties: the base token).
 *
 * @example
 * await lm.complete(prompt, { greedy: true, dropout: { context: [[1, 120]], members: 3, seed: 7 } });
 */
export interface DropoutOptions {
  /**
   * The context tokens to mark: half-open ranges [start, end) of prompt token indices (index 0 is
   * BOS when the prompt has one), or 'prompt' for every prompt token but a leading BOS.
   */
  context: ReadonlyArray<readonly [number, number]> | 'prompt';
  /** Ensemble members, 0..16. Default 3; 0 is plain decoding. */
  members?: number;
  /** Each member's rate r_m in [0, 1], one per member. Default: 0.3..0.7 evenly ([0.3, 0.5, 0.7] for 3). */
  rates?: number[];
  /** Drop probability of the least uncertain relevant token (q_min), in [0, 1]. Default 0.1. */
  minRate?: number;
  /** A context token is relevant to candidate y when y is among its top `topK` tokens. Default 5. */
  topK?: number;
  /** Seed of the drops (and of members' samples when sampling). Default: the generation's `seed`. */
  seed?: number;
  /**
   * 'epistemic' (default): q_i scaled by the token's uncertainty, as above. 'uniform': the
   * ablation, every relevant token dropped with the same probability (the mean of the guided
   * q_i, so the expected number of drops is the same).
   */
  guidance?: 'epistemic' | 'uniform';
}

/**
 * What dropout decoding did in one generation.
 *
 * @example
 * const { stats } = await lm.complete(prompt, { dropout: { context: 'prompt' } });
 * console.log(stats.dropout?.changedByVote, stats.dropout?.dropsPerMember);
 */
export interface DropoutStats {
  members: number;
  rates: number[];
  /** Prompt positions of the marked context tokens, and their uncertainty (nats), in that order. */
  context: { positions: number[]; aleatoric: number[]; epistemic: number[] };
  /** min / mean / max of each uncertainty over the marked tokens. */
  uncertainty: { aleatoric: { min: number; mean: number; max: number }; epistemic: { min: number; mean: number; max: number } };
  /** Tokens decided (one per step). */
  steps: number;
  /** Steps that ran the members (some relevant token was dropped by some member). */
  ensembleSteps: number;
  /** Context tokens each member dropped, summed over the steps. */
  dropsPerMember: number[];
  /** Steps where the vote chose another token than the base pass. */
  changedByVote: number;
  /** Mean over ensemble steps of (top vote count - runner-up count) / members. */
  meanVoteMargin: number;
  /**
   * Cost: member runs and their time, ms (the base passes are the plain decode steps). On WASM a
   * member run also carries the next step's base pass (`fusedRuns`; its time is in `memberMs`),
   * betting the vote keeps the base token; `overturnedFused` times it did not, and that base
   * pass ran again for the voted token.
   */
  memberRuns: number;
  memberMs: number;
  fusedRuns: number;
  overturnedFused: number;
  /**
   * Time the uncertainty took beyond the prefill's own runs, ms: the host's last reduction and,
   * for more marked rows than one run scores (workers/text/dropout-uncertainty.ts), the scratch
   * runs of the second pass. The scoring inside the prefill's runs is in `prefillMs`.
   */
  uncertaintyMs: number;
}

/**
 * Self-speculative decoding settings: where drafts exit and how many a round.
 *
 * @example
 * await lm.complete('Once upon a time', { greedy: true, speculate: { exit: 'auto', draft: 'auto' } });
 */
export interface SpeculateOptions {
  /**
   * Exit after this many kept layers (recompiles the plan with that exit if it differs). Default:
   * the plan's exit, or 'auto' when it has none: a short calibration pass picks the exit with the
   * best expected speed-up, once per plan and sampling mode.
   */
  exit?: number | 'auto';
  /** Drafts per round; 'auto' (default) adapts it every round to the measured acceptance and step costs. */
  draft?: number | 'auto';
}

/**
 * What self-speculative decoding did in one generation.
 *
 * @example
 * const { stats } = await lm.complete('Hi', { speculate: {} });
 * console.log(stats.speculation?.acceptance, stats.speculation?.tokensPerRound);
 */
export interface SpeculationStats {
  exit: number;
  /** What was asked for: a fixed length or 'auto'. */
  draft: number | 'auto';
  /** Mean drafts per round (equals `draft` when fixed). */
  meanDraft: number;
  rounds: number;
  drafted: number;
  accepted: number;
  /** accepted / drafted. */
  acceptance: number;
  /** Tokens each round produced on average (accepted drafts + the verifier's token). */
  tokensPerRound: number;
  /** Time spent drafting and verifying (incl. cache truncation), ms. */
  draftMs: number;
  verifyMs: number;
  /** When the exit was chosen by calibration: its expected speed-up under the cost model. */
  calibration?: { predictedSpeedup: number; ms: number };
}

/**
 * Timing and outcome of one generation (the `done` event's `stats`).
 *
 * @example
 * const { stats } = await lm.complete('Once upon a time', { maxTokens: 32 });
 * console.log(`${stats.decodeTokensPerSecond.toFixed(0)} tok/s, first token after ${stats.timeToFirstTokenMs} ms`);
 */
export interface GenerateStats {
  promptTokens: number;
  generatedTokens: number;
  /** Wall time of the prompt pass. */
  prefillMs: number;
  prefillTokensPerSecond: number;
  /** Wall time of the one-token steps after the first generated token. */
  decodeMs: number;
  decodeTokensPerSecond: number;
  /** From the generate() call to the first token event. */
  timeToFirstTokenMs: number;
  stopReason: 'stop-token' | 'stop-string' | 'max-tokens' | 'context';
  /**
   * The plan that ran: models/llama's `LlamaPlan` (blocks kept, in order; the early exit; the
   * KV heads and FFN channels each block kept, when width-pruned), spelled out because core names
   * no other layer's types (workers/text/text-types.test.ts fails to compile if the two drift apart).
   */
  plan: { layers: number[]; exit?: number; width?: { kvHeads: number[][]; ffn: number[][]; bias?: boolean } };
  /** Attention implementation in the compiled graphs: models/llama's `AttentionKind`, spelled out (see `plan`). */
  attention: 'plain' | 'gqa' | 'onnx';
  /** With `speculate`: drafts proposed and accepted, rounds, timing. */
  speculation?: SpeculationStats;
  /** With `dropout` (members > 0 and some marked context): the uncertainty, drops, votes and cost. */
  dropout?: DropoutStats;
}

/**
 * A generation's stream: one `token` event per generated token, then one `done` event.
 *
 * The text is exact: every token event's `text`, then the done event's `tail`, concatenate to
 * `done.text`, which is what the tokenizer decodes for prompt + generated tokens minus what it
 * decodes for the prompt (so the first token keeps its leading space), cut before the first stop
 * string. A token's `text` may be '' while a multi-byte character is incomplete or the text could
 * still become a stop string; nothing emitted is ever taken back.
 *
 * @example
 * for await (const ev of lm.generate('Once upon a time')) {
 *   if (ev.type === 'token') out.append(ev.text);
 *   else out.append(ev.tail), console.log(ev.stats.stopReason);
 * }
 */
export type TextEvent =
  | {
      type: 'token';
      token: number;
      /** The text that became final with this token (possibly ''). */
      text: string;
      /** With `speculate`: 'draft' for an accepted draft, 'verifier' for the full model's own token. */
      origin?: 'draft' | 'verifier';
      /** With `speculate`: drafts the verifier rejected right before this token, and their text in context. */
      rejected?: { tokens: number[]; text: string };
      /**
       * With `dropout`, on steps where the members ran: the base pass's token, each member's token
       * and the prompt positions each member dropped.
       */
      dropout?: { base: number; votes: number[]; dropped: number[][] };
    }
  | {
      type: 'done';
      /** Generated token ids (stop tokens excluded). */
      tokens: number[];
      /** The whole generated text: the token events' texts + `tail`. */
      text: string;
      /**
       * Text no token event carried, released at the end: the start of a stop string that never
       * completed, or an incomplete UTF-8 sequence (decoded as U+FFFD). Usually ''.
       */
      tail: string;
      stats: GenerateStats;
    };
