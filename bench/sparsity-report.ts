/**
 * Sparsity (issue #14) on the three trained models: held-out perplexity, stored variant bytes and
 * decode speed of 50% unstructured and 2:4 masks (Wanda, and magnitude as the data-free
 * baseline), alone (fp32) and composed with q8 / q4 g32, against the dense model of each form.
 * Everything through the engine: `TextEngine.compress({ linear, sparsity }, { keepStored })`
 * (Wanda's norms through the linear-input probe graphs on the built-in calibration text), the
 * variant bytes from writing its stored form (model.whittle.safetensors, as `whittle compress`
 * writes it), perplexity teacher-forced one token per step (onnxruntime-web WASM in Node, 1 thread).
 *
 *   npx tsx bench/sparsity-report.ts [--reps 2] [--models stories260K,stories-layerskip]
 *
 * Writes its section into bench/PRUNING.md (between the sparsity markers, after the width
 * section, which bench/prune-report.ts keeps with everything after it) and prints one JSON line
 * last: { rows: [{ model, method, weights, sparsity, params_removed, perplexity, perplexity_ratio, bytes, bytes_ratio, decode_speedup }] }.
 *
 * Held-out text: the six stories bench/prune-report.ts samples from stories260K (seeds 101-106),
 * so the dense fp32 perplexities equal the depth and width tables'.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { settingTag } from '../models/compress/variant-name.ts';
import { readVariant, writeVariant } from '../models/compress/variant.ts';
import { toKernelForms } from '../models/compress/variant-forms.ts';
import type { SparsitySetting } from '../models/compress/sparsity-select.ts';
import { blockParams } from '../models/compress/width-select.ts';
import { headSizeOf, type WeightsSetting } from '../models/llama/types.ts';
import { REPO_ROOT } from '../models/local.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf, type TextModel } from '../workers/text/model.ts';
import { decodeSpeed, heldOutPerplexity, heldOutWindows, sampleHeldOutStories, stories260KModel } from './held-out.ts';
import { localHfFolder } from './local-hf-folder.ts';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
};
const reps = Number(arg('reps', '2'));
const modelIds = arg('models', 'stories260K,stories-layerskip,stories-baseline').split(',');
const START = '<!-- sparsity-report: bench/sparsity-report.ts writes this section -->';
const END = '<!-- /sparsity-report -->';
const outPath = join(REPO_ROOT, 'bench', 'PRUNING.md');
const log = (...a: unknown[]) => console.error(new Date().toISOString().slice(11, 19), ...a);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const loadStart = loadavg()[0]!;

function modelOf(id: string): TextModel | null {
  if (id === 'stories260K') return stories260KModel();
  const f = localHfFolder(id);
  return f ? textModelFromHf(f.files) : null;
}

// Held-out stories, exactly as bench/prune-report.ts samples them.
const heldOutStories = await sampleHeldOutStories(ort);

interface Row { model: string; weights: string; sparsity: string; perplexity: number; bytes: number; cpuTps: number; seconds: number; readMs: number; parts: FileParts; paramsRemoved: number }

/** Where a variant's bytes go: the block linears' sparse indexes, their elements (kept values or dense codes), their scales / zero points, and the rest (embedding, norms, head, header). */
interface FileParts { index: number; elements: number; scales: number; rest: number }
function fileParts(parts: ArrayBuffer[]): FileParts {
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(parts[0]!, 8))) as Record<string, { data_offsets?: [number, number] }>;
  const out: FileParts = { index: 0, elements: 0, scales: 0, rest: parts[0]!.byteLength };
  for (const [name, e] of Object.entries(header)) {
    if (!e.data_offsets) continue;
    const n = e.data_offsets[1] - e.data_offsets[0];
    if (!name.startsWith('layers.') || /_norm$|qkv_bias$/.test(name)) out.rest += n;
    else if (name.endsWith('.sparse_index')) out.index += n;
    else if (/\.(scales|zero_points)$/.test(name)) out.scales += n;
    else out.elements += n;
  }
  return out;
}

/** Best of 3: the variant file's bytes -> WASM kernel-form weights (readVariant: checks, sparse decode, BF16 widening; then toKernelForms). */
function readTime(parts: ArrayBuffer[], setting: WeightsSetting): number {
  const file = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  parts.reduce((o, p) => (file.set(new Uint8Array(p), o), o + p.byteLength), 0);
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    const { prepared, info } = readVariant(file.buffer.slice(0));
    toKernelForms(prepared, info.setting ?? setting, 'wasm');
    best = Math.min(best, performance.now() - t0);
  }
  return best;
}
const rows: Row[] = [];
const sparsities: (SparsitySetting | null)[] = [
  null,
  { pattern: 'unstructured', method: 'wanda' },
  { pattern: 'unstructured', method: 'magnitude' },
  { pattern: '2:4', method: 'wanda' },
  { pattern: '2:4', method: 'magnitude' },
];
const bases: WeightsSetting[] = [{ linear: 'f32' }, { linear: 'q8' }, { linear: 'q4', group: 32 }];
const label = (s: SparsitySetting | null) => (s ? `${s.pattern === '2:4' ? '2:4' : `${(s.ratio ?? 0.5) * 100}% unstructured`} ${s.method}` : 'dense');

for (const id of modelIds) {
  const model = modelOf(id);
  if (!model) {
    log(`${id}: not present, skipped`);
    continue;
  }
  const c = model.config;
  const blockLinear = blockParams({ dim: c.dim, headSize: headSizeOf(c), nHeads: c.nHeads, nKvHeads: c.nKvHeads, hidden: c.hiddenDim });
  const total = c.vocabSize * c.dim * (c.tiedEmbeddings ? 1 : 2) + c.dim + c.nLayers * (blockLinear + 2 * c.dim);
  const windows = heldOutWindows(model, heldOutStories);
  for (const base of bases) {
    // Quantized rows: Wanda only (magnitude is measured on fp32, where it shows the calibration's worth).
    for (const sparsity of base.linear === 'f32' ? sparsities : sparsities.filter((s) => s === null || s.method === 'wanda')) {
      const setting: WeightsSetting = { ...base, ...(sparsity ? { sparsity } : {}) };
      const engine = await TextEngine.create(ort, 'wasm', model);
      const t0 = performance.now();
      // fp32 dense: nothing to compress, but the same path writes its (f32) variant.
      await engine.compress(setting, { keepStored: true });
      const seconds = (performance.now() - t0) / 1000;
      const parts = writeVariant(engine.takeStored()!, setting, { id, revision: 'bench', format: id === 'stories260K' ? 'llama2c' : 'hf' });
      const bytes = parts.reduce((s, p) => s + p.byteLength, 0);
      const readMs = readTime(parts, setting);
      const perplexity = await heldOutPerplexity(engine, windows);
      const cpuTps = (await decodeSpeed(engine, c.bosTokenId, reps)).cpu;
      await engine.dispose();
      // The masks zero `ratio` of every block linear (2:4: half); the embedding, norms and head stay dense.
      const paramsRemoved = sparsity ? ((sparsity.pattern === '2:4' ? 0.5 : (sparsity.ratio ?? 0.5)) * c.nLayers * blockLinear) / total : 0;
      rows.push({ model: id, weights: base.linear === 'q4' ? 'q4 g32' : base.linear, sparsity: label(sparsity), perplexity, bytes, cpuTps, seconds, readMs, parts: fileParts(parts), paramsRemoved });
      log(`${id} ${settingTag(setting)}: ppl ${perplexity.toFixed(3)}, ${bytes} B, read ${readMs.toFixed(0)} ms, ${cpuTps.toFixed(0)} tok per CPU-s, compress ${seconds.toFixed(1)} s`);
    }
  }
}

// ---- report ----
const f3 = (x: number) => x.toFixed(3);
const denseOf = (r: Row) => rows.find((d) => d.model === r.model && d.weights === r.weights && d.sparsity === 'dense')!;
const fp32Of = (r: Row) => rows.find((d) => d.model === r.model && d.weights === 'f32' && d.sparsity === 'dense')!;
const pctDiff = (a: number, b: number) => `${a >= b ? '+' : '−'}${(Math.abs(a / b - 1) * 100).toFixed(1)}%`;
const md: string[] = [];
md.push(START, '## Sparsity (Wanda, magnitude; unstructured 50% and 2:4), alone and with q8 / q4', '');
md.push('```', `npx tsx bench/sparsity-report.ts --reps ${reps}`, '```', '');
md.push(
  `Generated ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (Node ${process.version}, ${cpus().length} cores shared, load ${loadStart.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}). Every row is a fresh engine: \`TextEngine.compress({ linear, sparsity }, { keepStored: true })\` (Wanda's input norms through the linear-input probe graphs on the built-in calibration text, one pass over the unmasked model; masks over every block linear, embedding and head dense; then quantized), the variant bytes of its stored form as \`whittle compress\` writes it, held-out perplexity on the six stories of the depth tables (teacher-forced through the compiled graphs, onnxruntime-web WASM in Node, 1 thread), decode = best of ${reps} greedy 128-token runs, tokens per CPU-second of this process.`,
  '',
  '- **bytes**: the whole model.whittle.safetensors (embedding, norms, head included); **vs dense bytes** against the dense variant of the same weights form. The sparse index is 8/3 bits per group of 4 for 2:4 and a 1-bit mask for unstructured (models/compress/sparse-encoding.ts); kept values in the form\'s own elements; scales and zero points stay dense.',
  '- **index / values / scales / rest**: shares of the variant\'s bytes: the block linears\' sparse indexes, their stored elements (kept values; dense codes in a dense row), their scales and zero points, and everything else (embedding, norms, head, header). **no-index floor**: the bytes without the index against the dense variant: what even a free index could not go below while the kept codes stay bit-exact.',
  '- **read ms**: the variant file -> WASM kernel-form weights (`readVariant` + `toKernelForms`; best of 3): what a cached load pays before compiling; a sparse variant adds its decode (index walk, codes re-packed, transposes).',
  '- **decode**: the kernels are dense (the sparse weights are expanded at load: onnxruntime-web has no sparse MatMul on WASM or WebGPU), so sparsity cannot change the speed; the column shows the noise of this machine, not an effect.',
  '',
);
md.push('| model | weights | sparsity | held-out ppl | vs dense (same weights) | vs fp32 dense | variant bytes | vs dense bytes | index / values / scales / rest | no-index floor | read ms | decode tok per CPU-s | vs dense | compress s |', '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const d = denseOf(r);
  const f = fp32Of(r);
  md.push(
    `| ${r.model} | ${r.weights} | ${r.sparsity} | ${f3(r.perplexity)} | ${r === d ? '—' : pctDiff(r.perplexity, d.perplexity)} | ${r === f ? '—' : pctDiff(r.perplexity, f.perplexity)} | ${(r.bytes / 1e6).toFixed(3)} MB | ${(r.bytes / d.bytes * 100).toFixed(1)}% | ${[r.parts.index, r.parts.elements, r.parts.scales, r.parts.rest].map((b) => (b / r.bytes * 100).toFixed(0)).join(' / ')}% | ${((r.bytes - r.parts.index) / d.bytes * 100).toFixed(1)}% | ${r.readMs.toFixed(0)} | ${r.cpuTps.toFixed(0)} | ${(r.cpuTps / d.cpuTps).toFixed(2)}x | ${r.seconds.toFixed(1)} |`,
  );
}
md.push('', END);

const existing = existsSync(outPath) ? readFileSync(outPath, 'utf8') : '';
const start = existing.indexOf(START);
const end = existing.indexOf(END);
const before = start >= 0 ? existing.slice(0, start) : existing.trimEnd() + '\n\n';
const after = start >= 0 && end > start ? existing.slice(end + END.length) : '\n';
writeFileSync(outPath, before + md.join('\n') + after);
log(`wrote ${outPath}`);
console.log(
  JSON.stringify({
    rows: rows.map((r) => ({
      model: r.model,
      method: r.sparsity,
      weights: r.weights,
      sparsity: r.sparsity,
      params_removed: Number(r.paramsRemoved.toFixed(4)),
      perplexity: Number(r.perplexity.toFixed(4)),
      perplexity_ratio: Number((r.perplexity / denseOf(r).perplexity).toFixed(4)),
      bytes: r.bytes,
      bytes_ratio: Number((r.bytes / denseOf(r).bytes).toFixed(4)),
      bytes_parts: r.parts,
      read_ms: Number(r.readMs.toFixed(1)),
      decode_cpu_ratio: Number((r.cpuTps / denseOf(r).cpuTps).toFixed(3)),
      // The same number under the name bench:prune's table uses (decode tok per CPU-s over the dense model of the same weights form).
      decode_speedup: Number((r.cpuTps / denseOf(r).cpuTps).toFixed(3)),
      bytes_basis: 'variant file',
    })),
  }),
);
