/** Whittle playground: capabilities, the verified model cache, and a first model in a worker. */
import { Whittle, WhittleError, type BackendPreference, type HeadModel, type ModelManifest, type StoreEvent } from '../../sdk/index.ts';
import { readTok512, type Tok512 } from './tok512.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(2)} MiB` : `${(n / 1024).toFixed(1)} KiB`);
const describe = (e: unknown) => (e instanceof WhittleError ? `${e.code}: ${e.message}` : String(e));

let whittle: Whittle;
let head: HeadModel | null = null;
let tokenizer: Tok512 | null = null;

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
  const { models } = (await res.json()) as { models: ModelManifest[] };
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

async function predict(): Promise<void> {
  const info = $('run-info');
  const list = $('predictions');
  try {
    if (!head) {
      info.textContent = 'loading stories260K into a worker…';
      head = await whittle.headModel('stories260K', {
        onProgress: (e) => {
          if (e.type === 'progress') info.textContent = `downloading ${e.file}: ${fmtBytes(e.overallLoaded)} / ${fmtBytes(e.overallTotal)}`;
        },
      });
      const manifest = await whittle.manifest('stories260K');
      const tok = await whittle.store.load(manifest);
      tokenizer = readTok512(await tok.files.get('tok512.bin')!.arrayBuffer(), head.info.vocabSize);
      await renderModels();
    }
    const ids = [1, ...tokenizer!.encode(($('prompt') as HTMLInputElement).value)];
    const t0 = performance.now();
    const logits = await head.logits(ids);
    const ms = performance.now() - t0;
    const vocab = head.info.vocabSize;
    const last = logits.subarray((ids.length - 1) * vocab, ids.length * vocab);
    const max = Math.max(...last);
    const exps = Array.from(last, (l) => Math.exp(l - max));
    const sum = exps.reduce((a, b) => a + b, 0);
    const top = exps.map((p, id) => ({ id, p: p / sum })).sort((a, b) => b.p - a.p).slice(0, 10);
    info.textContent = `${ids.length} tokens → ${ms.toFixed(1)} ms on ${head.info.runtime.backend} (${head.info.runtime.numThreads} thread(s), ${head.info.nodeCount} ONNX nodes, weights from ${head.source})`;
    list.replaceChildren(
      ...top.map(({ id, p }) => {
        const li = document.createElement('li');
        li.textContent = `${JSON.stringify(tokenizer!.decode(id))} ${(p * 100).toFixed(1)}%`;
        const bar = Object.assign(document.createElement('span'), { className: 'bar' });
        bar.style.width = `${Math.round(p * 200)}px`;
        li.append(bar);
        return li;
      }),
    );
  } catch (e) {
    info.textContent = describe(e);
    info.className = 'error';
  }
}

$('try-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  void predict();
});
$('backend').addEventListener('change', () => {
  head?.dispose();
  head = null;
  void start(($('backend') as HTMLSelectElement).value as BackendPreference);
});
$('clear').addEventListener('click', () => {
  head?.dispose();
  head = null;
  void whittle.store.clear().then(renderModels);
});
void start('auto');
