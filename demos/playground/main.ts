/**
 * Whittle playground: capabilities, the verified model cache, and a story model in a worker
 * (pruning, early exit, self-speculative decoding). The width-sweep and dropout-decoding panels
 * live in their own modules and share the loaded model (model-session.ts).
 */
import { Whittle, type BackendPreference, type GenerateOptions, type LlamaPlan, type ModelManifest, type PruneCriterion, type StoreEvent, type TextEvent } from 'whittle';
import { $, describe, fmtBytes, showError } from './dom.ts';
import { setupDropoutPanel } from './dropout-panel.ts';
import { announcePlan, currentWhittle, dropModel, exclusive, loadedModel, loadModel, onPlanChange, useWhittle } from './model-session.ts';
import { setupWidthPanel } from './width-panel.ts';

let running: AbortController | null = null;
let startSeq = 0;

async function start(preference: BackendPreference): Promise<void> {
  // The user may switch backends while a previous probe is still running: last one wins.
  const seq = ++startSeq;
  const created = await Whittle.create({ backend: preference });
  if (seq !== startSeq) return;
  useWhittle(created);
  const { capabilities: caps, choice } = created;
  const rows: [string, string][] = [
    ['WebGPU', caps.webgpu.available ? `${caps.webgpu.vendor || 'adapter'} ${caps.webgpu.architecture ?? ''}${caps.webgpu.isFallbackAdapter ? ' (software)' : ''}` : 'not available'],
    ['shader-f16', caps.webgpu.shaderF16 ? 'yes' : 'no'],
    ['cross-origin isolated', caps.crossOriginIsolated ? 'yes (WASM threads)' : 'no (single-threaded WASM)'],
    ['CPU threads', String(caps.hardwareConcurrency)],
    ['model cache', created.store.backend === 'opfs' ? 'Origin Private File System' : 'Cache Storage'],
  ];
  $('caps').replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
  $('choice').textContent = `Using ${choice.backend}: ${choice.reason}.`;
  await renderModels();
}

async function renderModels(): Promise<void> {
  const whittle = currentWhittle();
  const res = await fetch('/models/manifests.json');
  const { models } = (await res.json()) as { models: (ModelManifest & { kind?: string })[] };
  const select = $<HTMLSelectElement>('model');
  const textModels = models.filter((m) => m.kind === 'text').map((m) => m.id);
  if (select.options.length !== textModels.length) {
    select.replaceChildren(...textModels.map((id) => Object.assign(document.createElement('option'), { value: id, textContent: id })));
  }
  const cached = new Set((await whittle.store.list()).map((e) => e.id));
  $('usage').textContent = `${fmtBytes(await whittle.store.usage())} cached`;
  $('model-rows').replaceChildren(
    ...models.map((m) => {
      const tr = document.createElement('tr');
      const size = m.files.reduce((s, f) => s + f.size, 0);
      const status = document.createElement('td');
      status.textContent = cached.has(m.id) ? 'cached ✓' : 'not downloaded';
      const action = document.createElement('button');
      action.textContent = cached.has(m.id) ? 'Delete' : 'Download';
      action.onclick = async () => {
        action.disabled = true;
        try {
          if (cached.has(m.id)) await whittle.store.delete(m.id);
          else {
            const bar = document.createElement('progress');
            status.replaceChildren(bar);
            await whittle.store.load(m, { onProgress: (e: StoreEvent) => e.type === 'progress' && ((bar.max = e.overallTotal), (bar.value = e.overallLoaded)) });
          }
        } catch (e) {
          status.textContent = describe(e);
          status.className = 'error';
          return;
        }
        await renderModels();
      };
      const cells = [m.id, fmtBytes(size), m.license ?? ''].map((t) => Object.assign(document.createElement('td'), { textContent: t }));
      const last = document.createElement('td');
      last.append(action);
      tr.append(...cells, status, last);
      return tr;
    }),
  );
}

/** Block checkboxes and the exit slider for the loaded model's plan. */
function renderPlanControls(nLayers: number, plan: LlamaPlan): void {
  $('blocks').replaceChildren(
    ...Array.from({ length: nLayers }, (_, i) => {
      const label = document.createElement('label');
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: plan.layers.includes(i), value: String(i) });
      label.append(box, String(i));
      return label;
    }),
  );
  const exit = $<HTMLInputElement>('exit');
  exit.max = String(nLayers - 1);
  if (Number(exit.value) > nLayers - 1) exit.value = '0';
  showExit();
  $<HTMLInputElement>('prune-k').max = String(Math.max(0, nLayers - 2));
  $<HTMLButtonElement>('prune').disabled = false;
}

/** The slider's value in words: 0 is "none" without speculation and "auto" (calibrated) with it. */
function showExit(): void {
  const v = Number($<HTMLInputElement>('exit').value);
  $('exit-value').textContent = v > 0 ? String(v) : $<HTMLInputElement>('speculate').checked ? 'auto' : 'none';
}

function keptLayers(): number[] {
  return [...$('blocks').querySelectorAll('input')].filter((b) => (b as HTMLInputElement).checked).map((b) => Number((b as HTMLInputElement).value));
}

/** Bars of one value per block/exit, the `highlight` ones in red; labels under each bar. */
function plotBars(title: string, values: number[], labels: string[], highlight: number[] = []): void {
  const svg = $('scores-plot') as unknown as SVGSVGElement;
  const ns = 'http://www.w3.org/2000/svg';
  const w = 560;
  const h = 130;
  const max = Math.max(...values.filter(Number.isFinite), 1e-9);
  const bw = w / values.length;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.replaceChildren(
    ...values.flatMap((v, i) => {
      const bh = Number.isFinite(v) ? (v / max) * (h - 34) : 0;
      const rect = document.createElementNS(ns, 'rect');
      Object.entries({ x: i * bw + 4, y: h - 18 - bh, width: bw - 8, height: bh }).forEach(([k, val]) => rect.setAttribute(k, String(val)));
      if (highlight.includes(i)) rect.setAttribute('class', 'removed');
      const value = document.createElementNS(ns, 'text');
      value.setAttribute('x', String(i * bw + bw / 2));
      value.setAttribute('y', String(h - 22 - bh));
      value.setAttribute('text-anchor', 'middle');
      value.textContent = Number.isFinite(v) ? (v >= 10 ? v.toFixed(0) : v.toFixed(2)) : '–';
      const label = document.createElementNS(ns, 'text');
      label.setAttribute('x', String(i * bw + bw / 2));
      label.setAttribute('y', String(h - 4));
      label.setAttribute('text-anchor', 'middle');
      label.textContent = labels[i]!;
      return [rect, value, label];
    }),
  );
  $('scores-title').textContent = title;
  $('scores').hidden = false;
}

/** Token spans: accepted drafts green, the verifier's tokens plain, rejected drafts struck out before the token that replaced them. */
function appendToken(out: HTMLElement, ev: Extract<TextEvent, { type: 'token' }>): void {
  if (ev.rejected && ev.rejected.text) out.append(Object.assign(document.createElement('s'), { className: 'rejected', textContent: ev.rejected.text }));
  if (!ev.origin) {
    out.append(ev.text);
    return;
  }
  out.append(Object.assign(document.createElement('span'), { className: `tok ${ev.origin}`, textContent: ev.text }));
}

async function generate(): Promise<void> {
  const out = $('story-out');
  const stats = $('story-stats');
  const rate = $('live-rate');
  const id = $<HTMLSelectElement>('model').value;
  running = new AbortController();
  $<HTMLButtonElement>('generate').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  stats.className = 'muted';
  rate.textContent = '';
  try {
    const model = await loadModel(id, running.signal, (text) => (stats.textContent = text));
    await renderModels();
    const layers = keptLayers();
    const exitValue = Number($<HTMLInputElement>('exit').value);
    const speculating = $<HTMLInputElement>('speculate').checked;
    const options: GenerateOptions = {
      maxTokens: Number($<HTMLInputElement>('max-tokens').value),
      temperature: Number($<HTMLInputElement>('temperature').value),
      seed: Number($<HTMLInputElement>('seed').value),
      signal: running.signal,
    };
    const current = model.info.plan;
    if (speculating) {
      // Exit after `exitValue` kept blocks (at least one block must stay to verify), or calibrated.
      const exit = exitValue > 0 ? Math.min(exitValue, layers.length - 1) : 'auto';
      if (current.layers.join() !== layers.join()) await model.setPlan(exit === 'auto' ? { layers } : { layers, exit });
      options.speculate = { exit, draft: $<HTMLSelectElement>('draft').value === 'auto' ? 'auto' : Number($<HTMLSelectElement>('draft').value) };
    } else {
      // A width-pruned plan (the width panel's Apply) keeps its narrowed blocks while the ticked blocks stay the same.
      const width = current.width && current.layers.join() === layers.join() ? { width: current.width } : {};
      const plan: LlamaPlan = exitValue > 0 ? { layers, exit: Math.min(exitValue, layers.length), ...width } : { layers, ...width };
      if (JSON.stringify(plan) !== JSON.stringify(current)) await model.setPlan(plan);
      options.exit = exitValue > 0;
    }
    const prompt = $<HTMLInputElement>('prompt').value;
    out.replaceChildren(prompt);
    $('legend').hidden = !speculating;
    let n = 0;
    let first = 0;
    for await (const ev of model.generate(prompt, options)) {
      if (ev.type === 'token') {
        appendToken(out, ev);
        if (n++ === 0) first = performance.now();
        else rate.textContent = `${(((n - 1) / (performance.now() - first)) * 1000).toFixed(0)} tok/s`;
      } else {
        out.append(ev.tail); // text held back to the end (an unfinished stop string or character)
        const s = ev.stats;
        const info = model.info;
        const sp = s.speculation;
        rate.textContent = `${s.decodeTokensPerSecond.toFixed(0)} tok/s`;
        stats.textContent =
          `${s.generatedTokens} tokens · first token ${s.timeToFirstTokenMs.toFixed(0)} ms · ` +
          `blocks [${s.plan.layers.join(',')}]${s.plan.width ? ', width-pruned' : ''}${options.exit ? ` exit after ${s.plan.exit}` : ''} · ` +
          (sp
            ? `speculating: exit ${sp.exit}${sp.calibration ? ' (calibrated)' : ''}, draft ${sp.draft === 'auto' ? `auto (mean ${sp.meanDraft.toFixed(1)})` : sp.draft}, ${sp.accepted}/${sp.drafted} drafts accepted (${(sp.acceptance * 100).toFixed(0)}%), ${sp.tokensPerRound.toFixed(2)} tokens/round · `
            : '') +
          `${info.runtime.backend}, ${info.runtime.numThreads} thread(s), ${info.nodeCounts.join('+')} ONNX nodes · weights from ${model.source}`;
        if (sp) {
          // The slider keeps what the user chose ('auto' stays auto); the label says what ran.
          if (sp.calibration) $('exit-value').textContent = `auto → ${sp.exit}`;
          const { profile } = await model.calibrateExits({ greedy: !(options.temperature! > 0), temperature: options.temperature });
          plotBars(
            `Agreement of each exit's top token with the full model on the calibration text (exit ${sp.exit} in red)`,
            profile.agreement.slice(0, -1),
            profile.agreement.slice(0, -1).map((_, i) => `exit ${i + 1}`),
            [sp.exit - 1],
          );
        }
      }
    }
  } catch (e) {
    showError(stats, e);
  } finally {
    running = null;
    $<HTMLButtonElement>('generate').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

/** Scores every block in the worker and drops the k least important: the plan changes in place. */
async function prune(): Promise<void> {
  const model = loadedModel();
  if (!model) return;
  const button = $<HTMLButtonElement>('prune');
  const stats = $('story-stats');
  button.disabled = true;
  stats.className = 'muted';
  stats.textContent = 'scoring blocks on the calibration text…';
  try {
    const criterion = $<HTMLSelectElement>('prune-criterion').value as PruneCriterion;
    const result = await model.prune({ remove: Number($<HTMLInputElement>('prune-k').value), criterion });
    announcePlan(result.info);
    const s = result.scores;
    const values = criterion === 'perplexity' ? s.perplexity : criterion === 'influence' ? s.influence : s.angular;
    const what = criterion === 'perplexity' ? `calibration perplexity without each block (full model: ${s.fullPerplexity.toFixed(2)})` : criterion === 'influence' ? 'block influence (1 - cosine of input and output)' : 'angular distance of input and output';
    plotBars(`Block scores: ${what}; removed in red`, values, values.map((_, i) => `block ${i}`), result.removed);
    stats.textContent = `pruned blocks [${result.removed.join(',')}] in ${(s.timing.similarityMs + s.timing.perplexityMs).toFixed(0)} ms of scoring: now blocks [${result.plan.layers.join(',')}]`;
  } catch (e) {
    stats.textContent = describe(e);
    stats.className = 'error';
  } finally {
    button.disabled = false;
  }
}

$('story-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void exclusive(generate);
});
$('stop').addEventListener('click', () => running?.abort());
$('prune').addEventListener('click', () => void exclusive(prune));
$('exit').addEventListener('input', showExit);
$('speculate').addEventListener('change', showExit);
$('backend').addEventListener('change', () => {
  dropModel();
  void start($<HTMLSelectElement>('backend').value as BackendPreference);
});
$('clear').addEventListener('click', () => {
  dropModel();
  void currentWhittle().store.clear().then(renderModels);
});
onPlanChange((info) => renderPlanControls(info.nLayers, info.plan));
setupWidthPanel();
setupDropoutPanel();
void start('auto');
