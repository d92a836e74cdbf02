/**
 * The dropout-decoding panel (issue #15): a context passage marked for dropout, a continuation
 * prompt after it, and after a run: the context's tokens coloured by their epistemic uncertainty
 * (aleatoric on hover), the generated tokens, and per generated token the members' votes and
 * the context tokens each member dropped; plain greedy's answer beside it, and the cost.
 */
import type { DropoutOptions, DropoutStats, TextEvent, TextModel } from 'whittle';
import { HELD_OUT_STORIES } from '../shared/held-out-stories.ts';
import { insertSentence, replaceRandomTokens, seededRandom, sentencesOf } from './context-noise.ts';
import { $, describe, el, showError } from './dom.ts';
import { exclusive, loadModel } from './model-session.ts';
import { tokenPieces, type TokenPieces } from './token-pieces.ts';

type TokenEvent = Extract<TextEvent, { type: 'token' }>;
type StepVotes = NonNullable<TokenEvent['dropout']>;

/** The first held-out story without its last sentence, which the prompt starts again: its true continuation is known. */
const DEFAULT_CONTEXT = sentencesOf([HELD_OUT_STORIES[0]!]).slice(0, -1).join(' ');
const DEFAULT_PROMPT = 'Ben laughed and';
/** Distractors come from the other held-out stories, never from the context's own. */
const DISTRACTORS = sentencesOf(HELD_OUT_STORIES.slice(1));
const CORRUPT_FRACTION = 0.2;

/** Low to high epistemic uncertainty: every channel falls as uncertainty rises, so the colour order is the value order. */
const LOW = [255, 247, 236];
const HIGH = [215, 48, 31];
const ramp = (t: number) => `rgb(${LOW.map((lo, i) => Math.round(lo + (HIGH[i]! - lo) * t)).join(', ')})`;

let running: AbortController | null = null;
let noiseSeed = 1;

/** The rates the SDK would pick for `members` (0.3..0.7 evenly), shown so the user sees and edits them. */
function defaultRates(members: number): string {
  if (members <= 0) return '';
  if (members === 1) return '0.5';
  return Array.from({ length: members }, (_, m) => (0.3 + (0.4 * m) / (members - 1)).toFixed(2).replace(/0$/, '')).join(', ');
}

function readOptions(contextRange: readonly [number, number], seed: number): DropoutOptions {
  const members = Number($<HTMLInputElement>('dropout-members').value);
  const rates = $<HTMLInputElement>('dropout-rates')
    .value.split(',')
    .map((r) => r.trim())
    .filter(Boolean)
    .map(Number);
  return { context: [contextRange], members, ...(rates.length ? { rates } : {}), guidance: $<HTMLSelectElement>('dropout-guidance').value as 'epistemic' | 'uniform', seed };
}

/** The context tokens as spans, coloured by min-max normalized epistemic uncertainty; `offset` maps a prompt position to its context index. */
function renderContext(ids: readonly number[], vocab: TokenPieces, stats: DropoutStats | undefined, offset: number): HTMLSpanElement[] {
  const spans = ids.map((id, i) => Object.assign(el('span', vocab.pieces[id] ?? '?', 'ctx'), { id: `ctx-${i}` }));
  if (!stats) {
    $('context-legend').textContent = 'No uncertainty: with 0 members (or no marked context) dropout decoding is plain decoding and computes none.';
    return spans;
  }
  const { positions, epistemic, aleatoric } = stats.context;
  const { min, max } = stats.uncertainty.epistemic;
  positions.forEach((position, k) => {
    const span = spans[position - offset];
    if (!span) return;
    const t = max > min ? (epistemic[k]! - min) / (max - min) : 0;
    span.style.backgroundColor = ramp(t);
    if (t > 0.6) span.classList.add('dark');
    span.dataset.epistemic = String(epistemic[k]);
    span.dataset.aleatoric = String(aleatoric[k]);
    span.title = `epistemic ${epistemic[k]!.toFixed(3)} nats · aleatoric ${aleatoric[k]!.toFixed(3)} nats`;
  });
  const legend = $('context-legend');
  legend.replaceChildren(
    el('span', `least uncertain ${min.toFixed(2)} nats`),
    Object.assign(el('span', '', 'ramp'), { style: `background: linear-gradient(to right, ${ramp(0)}, ${ramp(1)})` }),
    el('span', `${max.toFixed(2)} nats most uncertain`),
  );
  return spans;
}

/** What showing a step needs of its run: the pieces, the context's ids and where they start, the members' rates. */
interface RunView {
  vocab: TokenPieces;
  contextIds: readonly number[];
  offset: number;
  rates: () => readonly number[];
}

/** The members' votes and drops of one step, and its dropped context tokens outlined. */
function showStep(index: number, ev: TokenEvent, { vocab, contextIds, offset, rates }: RunView): void {
  for (const span of $('context-tokens').querySelectorAll('.dropped')) span.classList.remove('dropped');
  for (const span of $('dropout-out').querySelectorAll('.gen.current')) span.classList.remove('current');
  document.getElementById(`gen-${index}`)?.classList.add('current');
  const detail = $('step-detail');
  const quote = (id: number) => `“${vocab.pieces[id] ?? '?'}”`;
  if (!ev.dropout) {
    detail.replaceChildren(el('p', `Token ${index + 1} ${quote(ev.token)}: no member dropped a context token relevant to it, so the members did not run and the base pass's token stands.`));
    return;
  }
  const step: StepVotes = ev.dropout;
  const dropped = new Map<number, number>();
  for (const position of step.dropped.flat()) dropped.set(position, (dropped.get(position) ?? 0) + 1);
  for (const [position, count] of dropped) {
    const span = document.getElementById(`ctx-${position - offset}`);
    span?.classList.add('dropped');
    if (span) span.dataset.droppedBy = String(count);
  }
  const agreeing = step.votes.filter((v) => v === ev.token).length;
  const head = el('p', `Token ${index + 1}: the base pass proposed ${quote(step.base)}; the vote chose ${quote(ev.token)} (${agreeing} of ${step.votes.length} members)${step.base !== ev.token ? ', overturning the base pass' : ''}.`);
  const table = el('table', '', 'votes');
  const header = el('tr');
  header.append(...['member', 'drop rate', 'context tokens dropped', 'vote'].map((h) => el('th', h)));
  table.append(header);
  step.votes.forEach((vote, m) => {
    const row = el('tr');
    const droppedText = step.dropped[m]!.map((p) => quote(contextIds[p - offset] ?? -1)).join(' ');
    row.append(el('td', String(m + 1)), el('td', rates()[m]?.toFixed(2) ?? ''), el('td', step.dropped[m]!.length ? `${step.dropped[m]!.length}: ${droppedText}` : 'none'), el('td', quote(vote), vote === ev.token ? 'win' : ''));
    table.append(row);
  });
  detail.replaceChildren(head, table);
}

function describeStats(d: DropoutStats | undefined, dropoutTokS: number, greedyTokS: number, agreement: string): string {
  // One short run each, the first after a plan change included: a glimpse, not a benchmark.
  const speed = `these short runs decoded ${dropoutTokS.toFixed(0)} tok/s (greedy ${greedyTokS.toFixed(0)} tok/s; npm run bench:dropout measures it)`;
  if (!d) return `plain decoding (0 members) · ${agreement} · ${speed}`;
  return (
    `${d.steps} steps, the members ran on ${d.ensembleSteps} · the vote changed ${d.changedByVote} · mean vote margin ${d.meanVoteMargin.toFixed(2)} · ` +
    `context tokens dropped per member [${d.dropsPerMember.join(', ')}] · ${agreement} · ` +
    `cost: ${d.memberRuns} member runs in ${d.memberMs.toFixed(0)} ms${d.fusedRuns ? ` (${d.fusedRuns} carrying the next base pass, ${d.overturnedFused} overturned)` : ''}, uncertainty ${d.uncertaintyMs.toFixed(1)} ms · ${speed}`
  );
}

async function run(): Promise<void> {
  const status = $('dropout-status');
  running = new AbortController();
  const signal = running.signal;
  $<HTMLButtonElement>('dropout-run').disabled = true;
  $<HTMLButtonElement>('dropout-stop').disabled = false;
  status.className = 'muted';
  try {
    const id = $<HTMLSelectElement>('model').value;
    const model: TextModel = await loadModel(id, signal, (text) => (status.textContent = text));
    const vocab = await tokenPieces(id);
    // Context and prompt are encoded apart, so the marked range is exactly the context's tokens.
    const contextIds = await model.encode($<HTMLTextAreaElement>('dropout-context').value);
    const promptIds = await model.encode($<HTMLInputElement>('dropout-prompt').value);
    const ids = [...contextIds, ...promptIds];
    const maxTokens = Number($<HTMLInputElement>('dropout-tokens').value);
    const seed = Number($<HTMLInputElement>('dropout-seed').value);
    // BOS goes first (addBos), so the context starts at prompt position 1.
    const offset = 1;
    const options = readOptions([offset, offset + contextIds.length], seed);
    const out = $('dropout-out');
    out.replaceChildren();
    $('greedy-out').replaceChildren();
    $('step-detail').replaceChildren(el('p', 'Hover or click a generated token to see the members’ votes and the context tokens each dropped.'));
    $('context-tokens').replaceChildren(...renderContext(contextIds, vocab, undefined, offset));
    $('dropout-results').hidden = false;
    status.textContent = 'decoding with the ensemble…';
    const events: TokenEvent[] = [];
    let done: Extract<TextEvent, { type: 'done' }> | null = null;
    // The rates the run used (the SDK's defaults when the field was empty) once it is done.
    const view: RunView = { vocab, contextIds, offset, rates: () => done?.stats.dropout?.rates ?? options.rates ?? [] };
    for await (const ev of model.generate(ids, { maxTokens, temperature: 0, addBos: true, dropout: options, signal })) {
      if (ev.type === 'done') {
        done = ev;
        out.append(ev.tail);
        continue;
      }
      const index = events.push(ev) - 1;
      const span = Object.assign(el('span', ev.text, `gen${ev.dropout ? ' ensemble' : ''}${ev.dropout && ev.dropout.base !== ev.token ? ' overturned' : ''}`), { id: `gen-${index}`, tabIndex: 0 });
      const show = () => showStep(index, ev, view);
      span.addEventListener('mouseenter', show);
      span.addEventListener('click', show);
      span.addEventListener('focus', show);
      out.append(span);
    }
    const finished = done;
    if (!finished) return;
    if (finished.stats.promptTokens !== ids.length + offset) throw new Error(`expected BOS before the prompt: ${finished.stats.promptTokens} prompt tokens for ${ids.length} ids`);
    $('context-tokens').replaceChildren(...renderContext(contextIds, vocab, finished.stats.dropout, offset));
    status.textContent = 'plain greedy, for comparison…';
    const greedy = await model.complete(ids, { maxTokens, temperature: 0, addBos: true, signal });
    $('greedy-out').textContent = greedy.text;
    const same = greedy.tokens.filter((t, i) => finished.tokens[i] === t).length;
    const agreement = `agrees with greedy on ${same} of ${greedy.tokens.length} tokens`;
    $('dropout-stats').textContent = describeStats(finished.stats.dropout, finished.stats.decodeTokensPerSecond, greedy.stats.decodeTokensPerSecond, agreement);
    status.textContent = '';
  } catch (e) {
    showError(status, e);
  } finally {
    running = null;
    $<HTMLButtonElement>('dropout-run').disabled = false;
    $<HTMLButtonElement>('dropout-stop').disabled = true;
  }
}

/** Rewrites the context textarea with the bench's kinds of noise. */
async function corrupt(kind: 'tokens' | 'distractor'): Promise<void> {
  const area = $<HTMLTextAreaElement>('dropout-context');
  const random = seededRandom(noiseSeed++);
  if (kind === 'distractor') {
    area.value = insertSentence(area.value, DISTRACTORS[Math.floor(random() * DISTRACTORS.length)]!);
    return;
  }
  const status = $('dropout-status');
  try {
    const id = $<HTMLSelectElement>('model').value;
    const model = await loadModel(id, new AbortController().signal, (text) => (status.textContent = text));
    status.textContent = '';
    area.value = replaceRandomTokens(await model.encode(area.value), CORRUPT_FRACTION, await tokenPieces(id), random);
  } catch (e) {
    status.textContent = describe(e);
    status.className = 'error';
  }
}

export function setupDropoutPanel(): void {
  $<HTMLTextAreaElement>('dropout-context').value = DEFAULT_CONTEXT;
  $<HTMLInputElement>('dropout-prompt').value = DEFAULT_PROMPT;
  $<HTMLInputElement>('dropout-rates').value = defaultRates(Number($<HTMLInputElement>('dropout-members').value));
  $('dropout-members').addEventListener('input', () => ($<HTMLInputElement>('dropout-rates').value = defaultRates(Number($<HTMLInputElement>('dropout-members').value))));
  $('dropout-run').addEventListener('click', () => void exclusive(run));
  $('dropout-stop').addEventListener('click', () => running?.abort());
  $('corrupt-tokens').addEventListener('click', () => void exclusive(() => corrupt('tokens')));
  $('insert-distractor').addEventListener('click', () => void corrupt('distractor'));
  $('restore-context').addEventListener('click', () => ($<HTMLTextAreaElement>('dropout-context').value = DEFAULT_CONTEXT));
}
