/**
 * The width panel: sweeps depth pruning, FLAP and Wanda-sp over the same fractions of the
 * blocks' weights on the loaded model, plots held-out perplexity against the parameters removed
 * (one line per method), and applies the fraction and method the user picks, so the story panel
 * generates with it. Everything runs in the model's worker through the public API
 * (`prune`, `setPlan`, `perplexity`); the plan in force before a sweep comes back after it.
 */
import type { LlamaPlan, TextModel, TextModelInfo } from 'whittle';
import { HELD_OUT_STORIES } from '../shared/held-out-stories.ts';
import { $, describe, el, isAbort } from './dom.ts';
import { plotLines, type Series } from './line-plot.ts';
import { announcePlan, exclusive, loadModel, onPlanChange } from './model-session.ts';

type SweepMethod = 'depth' | 'flap' | 'wanda-sp';

const METHODS: { method: SweepMethod; name: string; colour: string }[] = [
  { method: 'depth', name: 'depth', colour: '#8a8f98' },
  { method: 'flap', name: 'FLAP', colour: '#2f6fde' },
  { method: 'wanda-sp', name: 'Wanda-sp', colour: '#e0782f' },
];

/** Blocks removed at the sweep's points: 0..3 whole blocks, and width pruning at the same fractions, so every method is compared at equal parameters. */
const SWEEP_BLOCKS = [0, 1, 2, 3];

let sweeping: AbortController | null = null;

const percent = (f: number) => `${(f * 100).toFixed(f * 100 === Math.round(f * 100) ? 0 : 1)}%`;

/** Token-weighted perplexity over the held-out stories (one number, as bench/pages/prune.ts reports it). */
async function heldOutPerplexity(model: TextModel, signal?: AbortSignal): Promise<number> {
  let nll = 0;
  let predictions = 0;
  for (const text of HELD_OUT_STORIES) {
    const r = await model.perplexity(text, signal ? { signal } : {});
    nll += Math.log(r.perplexity) * r.predictions;
    predictions += r.predictions;
  }
  return Math.exp(nll / predictions);
}

const fullPlan = (nLayers: number): LlamaPlan => ({ layers: Array.from({ length: nLayers }, (_, i) => i) });

/**
 * Compiles `method` at `blocks / nLayers` of the blocks' weights from the full model; returns the
 * fraction of the blocks' linear parameters really removed (width pruning keeps whole heads and channels).
 */
async function pruneTo(model: TextModel, method: SweepMethod, blocks: number, signal?: AbortSignal): Promise<{ removed: number; info: TextModelInfo }> {
  const nLayers = model.info.nLayers;
  await model.setPlan(fullPlan(nLayers));
  const options = signal ? { signal } : {};
  if (method === 'depth') {
    const result = await model.prune({ remove: blocks, ...options });
    return { removed: (nLayers - result.plan.layers.length) / nLayers, info: result.info };
  }
  const result = await model.prune({ width: blocks / nLayers, method, ...options });
  return { removed: 1 - result.params.after / result.params.before, info: result.info };
}

/** The apply choices, in blocks' worth of weights; their percentage once a model (its block count) is known. */
function fillFractionChoices(nLayers: number | null): void {
  const select = $<HTMLSelectElement>('apply-fraction');
  const chosen = select.value;
  const label = (k: number) => (k === 0 ? 'none (full model)' : `${k} ${k > 1 ? "blocks'" : "block's"} worth${nLayers ? ` (${percent(k / nLayers)})` : ''}`);
  select.replaceChildren(...SWEEP_BLOCKS.map((k) => Object.assign(el('option', label(k)), { value: String(k) })));
  if (SWEEP_BLOCKS.map(String).includes(chosen)) select.value = chosen;
}

async function sweep(): Promise<void> {
  const status = $('sweep-status');
  const progress = $<HTMLProgressElement>('sweep-progress');
  const controller = new AbortController();
  sweeping = controller;
  const signal = controller.signal;
  $<HTMLButtonElement>('sweep').disabled = true;
  $<HTMLButtonElement>('sweep-stop').disabled = false;
  status.className = 'muted';
  let model: TextModel | null = null;
  let before: LlamaPlan | null = null;
  let outcome = '';
  try {
    model = await loadModel($<HTMLSelectElement>('model').value, signal, (text) => (status.textContent = text));
    before = model.info.plan;
    const nLayers = model.info.nLayers;
    fillFractionChoices(nLayers);
    const series: Series[] = METHODS.map(({ name, colour }) => ({ name, colour, points: [] }));
    const steps = 1 + SWEEP_BLOCKS.length * METHODS.length;
    progress.max = steps;
    progress.value = 0;
    progress.hidden = false;

    status.textContent = 'measuring the full model…';
    await model.setPlan(fullPlan(nLayers));
    const full = await heldOutPerplexity(model, signal);
    progress.value = 1;
    const fullLabel = $('sweep-full');
    fullLabel.textContent = `Full model: ${full.toFixed(3)}.`;
    fullLabel.dataset.perplexity = String(full);
    $('sweep-title').textContent = `${$<HTMLSelectElement>('model').value} (${nLayers} blocks): perplexity on ${HELD_OUT_STORIES.length} held-out stories against the share of the blocks' weights removed.`;
    $('sweep-figure').hidden = false;
    const draw = () => plotLines($('sweep-plot') as unknown as SVGSVGElement, series, { x: { label: "blocks' weights removed", format: percent }, y: { label: 'Perplexity', format: (v) => (Number.isInteger(v) ? String(v) : v.toFixed(v >= 100 ? 0 : 1)) } });
    draw();
    // Fraction by fraction (all methods at each): a stop leaves lines of equal reach.
    for (const blocks of SWEEP_BLOCKS) {
      for (const [i, { method, name }] of METHODS.entries()) {
        status.textContent = `${name}: removing ${percent(blocks / nLayers)} of the blocks' weights…`;
        const { removed } = await pruneTo(model, method, blocks, signal);
        status.textContent = `${name}: measuring ${percent(removed)} removed…`;
        series[i]!.points.push({ x: removed, y: await heldOutPerplexity(model, signal) });
        progress.value++;
        draw();
      }
    }
    outcome = `done: ${SWEEP_BLOCKS.length} fractions × ${METHODS.length} methods`;
  } catch (e) {
    outcome = describe(e);
    status.className = isAbort(e) ? 'muted' : 'error';
  } finally {
    // Back to the plan the user had (the sweep's last prune is not theirs).
    if (model && before) {
      status.textContent = 'restoring your plan…';
      try {
        announcePlan(await model.setPlan(before));
      } catch (e) {
        outcome += ` (restoring the plan: ${describe(e)})`;
        status.className = 'error';
      }
    }
    status.textContent = outcome;
    progress.hidden = true;
    sweeping = null;
    $<HTMLButtonElement>('sweep').disabled = false;
    $<HTMLButtonElement>('sweep-stop').disabled = true;
  }
}

/** Compiles the chosen method and fraction on the loaded model: the story panel generates with it. */
async function apply(): Promise<void> {
  const status = $('apply-status');
  const button = $<HTMLButtonElement>('apply-width');
  button.disabled = true;
  status.className = 'muted';
  try {
    const model = await loadModel($<HTMLSelectElement>('model').value, new AbortController().signal, (text) => (status.textContent = text));
    fillFractionChoices(model.info.nLayers);
    const method = $<HTMLSelectElement>('apply-method').value as SweepMethod;
    const blocks = Number($<HTMLSelectElement>('apply-fraction').value);
    status.textContent = 'pruning…';
    const { removed, info } = await pruneTo(model, method, blocks);
    announcePlan(info);
    const perplexity = await heldOutPerplexity(model);
    const name = METHODS.find((m) => m.method === method)!.name;
    status.textContent = blocks === 0 ? `full model (held-out perplexity ${perplexity.toFixed(2)}): generate above` : `${name}: ${percent(removed)} of the blocks' weights removed, held-out perplexity ${perplexity.toFixed(2)}: generate above with it`;
  } catch (e) {
    status.textContent = describe(e);
    status.className = 'error';
  } finally {
    button.disabled = false;
  }
}

export function setupWidthPanel(): void {
  fillFractionChoices(null);
  onPlanChange((info) => fillFractionChoices(info.nLayers));
  $('sweep').addEventListener('click', () => void exclusive(sweep));
  $('sweep-stop').addEventListener('click', () => sweeping?.abort());
  $('apply-width').addEventListener('click', () => void exclusive(apply));
}
