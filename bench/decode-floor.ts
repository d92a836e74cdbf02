/**
 * `npx tsx bench/decode-floor.ts [--shape smollm2-135m] [--reps 15] [--json]`: what memory
 * bandwidth allows a decode step on this machine, one thread. A decode step reads every weight
 * once; this times the decode kernels' products (workers/kernels) over one step's worth of
 * matrices in a shape's sizes, laid out as the kernels stream them, with nothing else in the
 * step: fp32 weights (gemvF32: what any f32 decode must read), bf16 (gemvBf16: an fp32 plan of a
 * bf16 checkpoint, the same values in half the bytes) and int8 (gemvInt8). Also a plain
 * read of the same bytes (the ceiling for any kernel). Weights are filler values (speed only).
 * The last line is JSON: ms per step and GB/s per form.
 */
import { parseArgs } from 'node:util';
import { KernelHeap } from '../workers/kernels/kernel-heap.ts';
import { bf16Padding, f32Padding, int8Padding } from '../workers/kernels/kernel-pack.ts';
import { publishedShape, isShapeId } from '../models/synthetic/shapes.ts';
import { llamaConfigFromHf } from '../models/import/hf/config.ts';
import { headSizeOf } from '../models/llama/types.ts';

const { values: args } = parseArgs({
  options: {
    shape: { type: 'string', default: 'smollm2-135m' },
    reps: { type: 'string', default: '15' },
    json: { type: 'boolean', default: false },
  },
});
if (!isShapeId(args.shape)) throw new Error(`unknown shape ${args.shape}`);
const c = llamaConfigFromHf(JSON.parse(publishedShape(args.shape).configJson));
const hs = headSizeOf(c);
/** One step's products [K, N]: per layer q|k|v, o, gate|up, down; then the head. */
const matrices: [number, number][] = [];
for (let l = 0; l < c.nLayers; l++) {
  matrices.push([c.dim, (c.nHeads + 2 * c.nKvHeads) * hs], [c.nHeads * hs, c.dim], [c.dim, 2 * c.hiddenDim], [c.hiddenDim, c.dim]);
}
matrices.push([c.dim, c.vocabSize]);
const reps = Number(args.reps);
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

const PADDING = { f32: f32Padding, bf16: bf16Padding, int8: int8Padding };
const BYTES = { f32: 4, bf16: 2, int8: 1 };

function timeForm(form: 'f32' | 'bf16' | 'int8'): { ms: number; bytes: number } {
  const heap = KernelHeap.create();
  const k = heap.kernels;
  const calls = matrices.map(([K, N]) => {
    const { Kpad, Npad } = PADDING[form](K, N);
    const bytes = Kpad * Npad * BYTES[form];
    const w = heap.alloc(bytes);
    // Filler: small normal values (zero pages would not be read from memory; denormals are slow).
    if (form === 'f32') heap.f32(w, Kpad * Npad).fill(0.01);
    else if (form === 'bf16') heap.u16(w, Kpad * Npad).fill(0x3c24); // ~0.01
    else heap.i8(w, Kpad * Npad).fill(3);
    return { w, Kpad, Npad, bytes };
  });
  const maxN = Math.max(...calls.map((m) => m.Npad));
  const maxK = Math.max(...calls.map((m) => m.Kpad));
  const scales = heap.alloc(maxN * 4);
  const x = heap.alloc(maxK * 4);
  const q = heap.alloc(maxK * 2);
  const y = heap.alloc(maxN * 4);
  heap.f32(x, maxK).fill(0.5);
  const step = () => {
    for (const m of calls) {
      if (form === 'f32') k.gemvF32(m.w, x, 0, y, m.Npad, m.Kpad);
      else if (form === 'bf16') k.gemvBf16(m.w, x, 0, y, m.Npad, m.Kpad);
      else k.gemvInt8(m.w, scales, q, 1, 0, y, m.Npad, m.Kpad);
    }
  };
  step();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  }
  return { ms: median(times), bytes: calls.reduce((n, m) => n + m.bytes, 0) };
}

/** A plain read of `bytes` (summed as int32 lanes in JS over a typed array): what the memory gives one thread. */
function timeRead(bytes: number): number {
  const a = new Int32Array(bytes / 4).fill(1);
  const times: number[] = [];
  let sink = 0;
  for (let r = 0; r < Math.min(reps, 5); r++) {
    const t = performance.now();
    let s = 0;
    for (let i = 0; i < a.length; i += 16) s += a[i]!; // one load per 64-byte line
    sink += s;
    times.push(performance.now() - t);
  }
  if (sink === -1) console.log(sink);
  return median(times);
}

const f32 = timeForm('f32');
const bf16 = timeForm('bf16');
const int8 = timeForm('int8');
const readMs = timeRead(f32.bytes);
const gbs = (bytes: number, ms: number) => Math.round((bytes / ms / 1e6) * 10) / 10;
const result = {
  benchmark: 'decode-floor',
  date: new Date().toISOString(),
  shape: args.shape,
  synthetic: true,
  threads: 1,
  f32: {
    ms: Math.round(f32.ms * 10) / 10,
    bytes: f32.bytes,
    gb_s: gbs(f32.bytes, f32.ms),
    max_tok_s: Math.round((1000 / f32.ms) * 10) / 10,
  },
  bf16: {
    ms: Math.round(bf16.ms * 10) / 10,
    bytes: bf16.bytes,
    gb_s: gbs(bf16.bytes, bf16.ms),
    max_tok_s: Math.round((1000 / bf16.ms) * 10) / 10,
  },
  int8: {
    ms: Math.round(int8.ms * 10) / 10,
    bytes: int8.bytes,
    gb_s: gbs(int8.bytes, int8.ms),
    max_tok_s: Math.round((1000 / int8.ms) * 10) / 10,
  },
  line_read: { ms: Math.round(readMs * 10) / 10, bytes: f32.bytes, gb_s: gbs(f32.bytes, readMs) },
};
if (!args.json) {
  console.log(
    `${args.shape}: fp32 products ${result.f32.ms} ms a step (${result.f32.gb_s} GB/s, at most ${result.f32.max_tok_s} tok/s); bf16 ${result.bf16.ms} ms (${result.bf16.gb_s} GB/s); int8 ${result.int8.ms} ms (${result.int8.gb_s} GB/s); a line-by-line read of the fp32 bytes ${result.line_read.gb_s} GB/s`,
  );
}
console.log(JSON.stringify(result));
