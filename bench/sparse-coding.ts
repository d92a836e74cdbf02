/**
 * The experiment behind bench/PRUNING.md's "what a coded index bought": the shipped sparse
 * variant (models/compress/sparse-encoding.ts: a bitmask or 2:4 pair index plus the kept codes
 * raw) against an adaptive range-coded index + codes (bench/sparse-coding/, not a product format),
 * on the block linears of stories-layerskip compressed through the engine (Wanda masks, q8 and
 * q4 g32, 50% unstructured and 2:4). Every coded weight is decoded and compared with the
 * original codes (the run fails on any difference); decode times are best of 3, this process.
 *
 *   npx tsx bench/sparse-coding.ts [--model stories-layerskip]
 *
 * Prints a table, then one JSON line: { rows: [{ setting, dense_codes, raw_ratio, coded_ratio,
 * file_raw_ratio, file_coded_ratio, raw_decode_ms, coded_decode_ms }] } (ratios against the
 * dense variant's codes / file of the same weights form).
 */
import { decodeSparseLinear, encodeSparseLinear } from '../models/compress/sparse-linear.ts';
import { writeVariant } from '../models/compress/variant.ts';
import type { LinearWeight } from '../models/compress/linear.ts';
import type { WeightsSetting } from '../models/llama/types.ts';
import { loadOrt } from '../workers/ort/runtime.ts';
import { TextEngine } from '../workers/text/engine.ts';
import { textModelFromHf } from '../workers/text/model.ts';
import { decodeSparseLinearStream, encodeSparseLinearStream } from './sparse-coding/coded-sparse.ts';
import { localHfFolder } from './local-hf-folder.ts';

const i = process.argv.indexOf('--model');
const id = i >= 0 ? process.argv[i + 1]! : 'stories-layerskip';
const folder = localHfFolder(id);
if (!folder) throw new Error(`${id}: not in public/models (npm run models)`);
const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const fileBytes = (parts: ArrayBuffer[]) => parts.reduce((n, p) => n + p.byteLength, 0);

type Quantized = Exclude<LinearWeight, Float32Array>;
const codesOf = (w: Quantized): Int8Array | Uint8Array => w.weight.b;
const likeOf = (w: Quantized) => (w.kind === 'int8' ? { kind: 'int8' as const, scales: w.weight.scales } : { kind: 'nbits' as const, bits: w.weight.bits, blockSize: w.weight.blockSize, scales: w.weight.scales, zeroPoints: w.weight.zeroPoints, accuracyLevel: 1 as const });

async function stored(setting: WeightsSetting) {
  const engine = await TextEngine.create(ort, 'wasm', textModelFromHf(folder!.files));
  await engine.compress(setting, { keepStored: true });
  const p = engine.takeStored()!;
  await engine.dispose();
  return p;
}

const best3 = (f: () => void) => Math.min(...[0, 1, 2].map(() => ((t0) => (f(), performance.now() - t0))(performance.now())));
const rows = [];
for (const base of [{ linear: 'q8' }, { linear: 'q4', group: 32 }] as WeightsSetting[]) {
  const denseFile = fileBytes(writeVariant(await stored(base), base, { id, revision: 'bench', format: 'hf' }));
  for (const pattern of ['unstructured', '2:4'] as const) {
    const setting: WeightsSetting = { ...base, sparsity: { pattern, method: 'wanda' } };
    const p = await stored(setting);
    const rawFile = fileBytes(writeVariant(p, setting, { id, revision: 'bench', format: 'hf' }));
    const c = p.config;
    const qkv = (c.nHeads + 2 * c.nKvHeads) * p.headSize;
    let dense = 0;
    let raw = 0;
    let coded = 0;
    let rawMs = 0;
    let codedMs = 0;
    for (const l of p.layers) {
      for (const [w, K, N] of [[l.qkv, c.dim, qkv], [l.wo, c.nHeads * p.headSize, c.dim], [l.gateUp, c.dim, 2 * c.hiddenDim], [l.down, c.hiddenDim, c.dim]] as const) {
        const q = w as Quantized;
        dense += codesOf(q).byteLength;
        const s = encodeSparseLinear(q, K, N, pattern);
        raw += s.index.byteLength + s.values.byteLength;
        rawMs += best3(() => decodeSparseLinear(s.index, s.values, likeOf(q), K, N, pattern, 'x'));
        const stream = encodeSparseLinearStream(q, K, N, pattern);
        coded += stream.byteLength;
        let back: LinearWeight | null = null;
        codedMs += best3(() => void (back = decodeSparseLinearStream(stream, likeOf(q), K, N, pattern, 'x')));
        const got = codesOf(back! as Quantized);
        const want = codesOf(q);
        for (let j = 0; j < want.length; j++) if (got[j] !== want[j]) throw new Error(`${JSON.stringify(setting)}: coded decode differs at ${j}`);
      }
    }
    const other = rawFile - raw; // everything but the block linears' codes and index: embedding, norms, head, scales, header
    rows.push({ setting: `${base.linear}${base.group ? ` g${base.group}` : ''} ${pattern}`, dense_codes: dense, raw_ratio: raw / dense, coded_ratio: coded / dense, file_raw_ratio: rawFile / denseFile, file_coded_ratio: (other + coded) / denseFile, raw_decode_ms: rawMs, coded_decode_ms: codedMs });
  }
}
const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
console.log(`${id}: block linears' index + codes against their dense codes, and the whole variant against the dense variant (bit-exact decode checked)`);
console.log('| weights, sparsity | raw (shipped) | coded | file raw | file coded | decode raw ms | decode coded ms |');
console.log('|---|---|---|---|---|---|---|');
for (const r of rows) console.log(`| ${r.setting} | ${pct(r.raw_ratio)} | ${pct(r.coded_ratio)} | ${pct(r.file_raw_ratio)} | ${pct(r.file_coded_ratio)} | ${r.raw_decode_ms.toFixed(0)} | ${r.coded_decode_ms.toFixed(0)} |`);
console.log(JSON.stringify({ rows: rows.map((r) => ({ ...r, raw_ratio: +r.raw_ratio.toFixed(4), coded_ratio: +r.coded_ratio.toFixed(4), file_raw_ratio: +r.file_raw_ratio.toFixed(4), file_coded_ratio: +r.file_coded_ratio.toFixed(4), raw_decode_ms: +r.raw_decode_ms.toFixed(1), coded_decode_ms: +r.coded_decode_ms.toFixed(1) })) }));
