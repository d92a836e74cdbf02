/** Whittle playground: capabilities, the verified model cache, and a story model in a worker. */
import { Whittle, WhittleError, type BackendPreference, type LlamaPlan, type ModelManifest, type StoreEvent, type TextModel } from '../../sdk/index.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const describe = (e: unknown) => (e instanceof WhittleError ? `${e.code}: ${e.message}` : String(e));

let whittle: Whittle;
let lm: { id: string; model: TextModel } | null = null;
let running: AbortController | null = null;
let startSeq = 0;

async function start(preference: BackendPreference): Promise<void> {
  // The user may switch backends while a previous probe is still running: last one wins.
  const seq = ++startSeq;
  const created = await Whittle.create({ backend: preference });
  if (seq !== startSeq) return;
  whittle = created;
  const { capabilities: caps, choice } = whittle;
  const rows: [string, string][] = [
    ['WebGPU', caps.webgpu.available ? `${caps.webgpu.vendor || 'adapter'} ${caps.webgpu.architecture ?? ''}${caps.webgpu.isFallbackAdapter ? ' (software)' : ''}` : 'not available'],
    ['shader-f16', caps.webgpu.shaderF16 ? 'yes' : 'no'],
    ['cross-origin isolated', caps.crossOriginIsolated ? 'yes (WASM threads)' : 'no (single-threaded WASM)'],
    ['CPU threads', String(caps.hardwareConcurrency)],
    ['model cache', whittle.store.backend === 'opfs' ? 'Origin Private File System' : 'Cache Storage'],
  ];
  $('caps').replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
  $('choice').textContent = `Using ${choice.backend}: ${choice.reason}.`;
  await renderModels();
}

async function renderModels(): Promise<void> {
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

/** Block checkboxes and exit choices for the loaded model. */
function renderPlanControls(nLayers: number): void {
  $('blocks').replaceChildren(
    ...Array.from({ length: nLayers }, (_, i) => {
      const label = document.createElement('label');
      const box = Object.assign(document.createElement('input'), { type: 'checkbox', checked: true, value: String(i) });
      label.append(box, String(i));
      return label;
    }),
  );
  const exit = $<HTMLSelectElement>('exit');
  exit.replaceChildren(
    Object.assign(document.createElement('option'), { value: '', textContent: 'none (full depth)' }),
    ...Array.from({ length: nLayers - 1 }, (_, i) => Object.assign(document.createElement('option'), { value: String(i + 1), textContent: String(i + 1) })),
  );
}

function planFromControls(): { plan: LlamaPlan; useExit: boolean } {
  const layers = [...$('blocks').querySelectorAll('input')].filter((b) => (b as HTMLInputElement).checked).map((b) => Number((b as HTMLInputElement).value));
  const exitValue = $<HTMLSelectElement>('exit').value;
  if (exitValue === '') return { plan: { layers }, useExit: false };
  // Exit after the first `exit` kept blocks.
  return { plan: { layers, exit: Math.min(Number(exitValue), layers.length) }, useExit: true };
}

async function generate(): Promise<void> {
  const out = $('story-out');
  const stats = $('story-stats');
  const id = $<HTMLSelectElement>('model').value;
  running = new AbortController();
  $<HTMLButtonElement>('generate').disabled = true;
  $<HTMLButtonElement>('stop').disabled = false;
  stats.className = 'muted';
  try {
    if (!lm || lm.id !== id) {
      lm?.model.dispose();
      lm = null;
      stats.textContent = `loading ${id} into a worker…`;
      const model = await whittle.text(id, {
        signal: running.signal,
        onProgress: (e) => {
          if (e.type === 'progress') stats.textContent = `downloading ${e.file}: ${fmtBytes(e.overallLoaded)} / ${fmtBytes(e.overallTotal)}`;
        },
      });
      lm = { id, model };
      renderPlanControls(model.info.nLayers);
      await renderModels();
    }
    const { plan, useExit } = planFromControls();
    if (JSON.stringify(plan) !== JSON.stringify(lm.model.info.plan)) await lm.model.setPlan(plan);
    const prompt = $<HTMLInputElement>('prompt').value;
    out.textContent = prompt;
    for await (const ev of lm.model.generate(prompt, {
      maxTokens: Number($<HTMLInputElement>('max-tokens').value),
      temperature: Number($<HTMLInputElement>('temperature').value),
      seed: Number($<HTMLInputElement>('seed').value),
      exit: useExit,
      signal: running.signal,
    })) {
      if (ev.type === 'token') out.textContent += ev.text;
      else {
        const s = ev.stats;
        const info = lm.model.info;
        stats.textContent =
          `${s.generatedTokens} tokens · ${s.decodeTokensPerSecond.toFixed(0)} tok/s decode · first token ${s.timeToFirstTokenMs.toFixed(0)} ms · ` +
          `blocks [${s.plan.layers.join(',')}]${useExit ? ` exit after ${s.plan.exit}` : ''} · ${info.runtime.backend}, ${info.runtime.numThreads} thread(s), ` +
          `${info.nodeCounts.join('+')} ONNX nodes · weights from ${lm.model.source}`;
      }
    }
  } catch (e) {
    stats.textContent = describe(e);
    stats.className = e instanceof WhittleError && e.code === 'ABORTED' ? 'muted' : 'error';
  } finally {
    running = null;
    $<HTMLButtonElement>('generate').disabled = false;
    $<HTMLButtonElement>('stop').disabled = true;
  }
}

$('story-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void generate();
});
$('stop').addEventListener('click', () => running?.abort());
$('backend').addEventListener('change', () => {
  lm?.model.dispose();
  lm = null;
  void start($<HTMLSelectElement>('backend').value as BackendPreference);
});
$('clear').addEventListener('click', () => {
  lm?.model.dispose();
  lm = null;
  void whittle.store.clear().then(renderModels);
});
void start('auto');
