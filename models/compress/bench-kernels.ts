/**
 * One linear layer per kernel at SmolLM2-135M's shapes, onnxruntime-web WASM in Node, 1 thread:
 * fp32 MatMul vs DynamicQuantizeMatMul (int8 per channel) vs MatMulNBits 8 and 4 bits (block 32,
 * accuracy_level 1 and 4), for S = 1 (a decode step) and S = 64 (a prefill chunk). Every variant
 * of a shape runs once per round, rounds interleaved, so machine noise hits all alike; the
 * median per variant is reported. Random weights (speed does not depend on their values).
 *
 *   npx tsx models/compress/bench-kernels.ts [rounds=9] [--json]
 *
 * A Node benchmark script, not part of the models layer: it is the one file here that runs
 * graphs, hence the lint exception on its runtime import.
 */
// eslint-disable-next-line no-restricted-imports -- a benchmark script: it must run the graphs it measures
import { createSession, loadOrt } from '../../workers/ort/runtime.ts';
import { createRng } from '../../core/random.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { quantizeBlockwise } from './blockwise.ts';
import { emitLinear, type LinearWeight } from './linear.ts';
import { quantizePerChannelInt8 } from './per-channel.ts';

const args = process.argv.slice(2);
const rounds = Number(args.find((a) => /^\d+$/.test(a)) ?? 9);
const asJson = args.includes('--json');

/** [K, N, role] at SmolLM2-135M (dim 576, 9/3 heads of 64, FFN 1536, vocab 49152). */
const SHAPES: [number, number, string][] = [
  [576, 576, 'q / o proj'],
  [576, 192, 'k / v proj'],
  [576, 1536, 'gate / up'],
  [1536, 576, 'down'],
  [576, 49152, 'lm head'],
  // What the graphs actually run (prepare.ts fuses them): q, k, v in one weight, gate and up in another.
  [576, 960, 'fused q+k+v'],
  [576, 3072, 'fused gate+up'],
];
const SEQ = [1, 64];

interface Variant { id: string; weight: (w: Float32Array, K: number, N: number) => LinearWeight }
const VARIANTS: Variant[] = [
  { id: 'f32 MatMul', weight: (w) => w },
  { id: 'DQMatMul int8', weight: (w, K, N) => ({ kind: 'int8', weight: quantizePerChannelInt8(w, K, N) }) },
  { id: 'NBits q8 acc1', weight: (w, K, N) => ({ kind: 'nbits', weight: quantizeBlockwise(w, K, N, 8, 32), accuracyLevel: 1 }) },
  { id: 'NBits q8 acc4', weight: (w, K, N) => ({ kind: 'nbits', weight: quantizeBlockwise(w, K, N, 8, 32), accuracyLevel: 4 }) },
  { id: 'NBits q4 acc1', weight: (w, K, N) => ({ kind: 'nbits', weight: quantizeBlockwise(w, K, N, 4, 32), accuracyLevel: 1 }) },
  { id: 'NBits q4 acc4', weight: (w, K, N) => ({ kind: 'nbits', weight: quantizeBlockwise(w, K, N, 4, 32), accuracyLevel: 4 }) },
];

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const rand = createRng(42);
const rows: { K: number; N: number; role: string; S: number; ms: Record<string, number> }[] = [];

for (const [K, N, role] of SHAPES) {
  const w = Float32Array.from({ length: K * N }, () => (rand() * 2 - 1) * 0.05);
  const sessions = [];
  for (const v of VARIANTS) {
    const g = new GraphBuilder('linear');
    const x = g.input('x', 'float32', [1, 'S', K]);
    g.output(emitLinear(g, x, 'w', v.weight(w, K, N), K, N, 'y'), 'float32', [1, 'S', N]);
    sessions.push(await createSession(ort, g.build(), 'wasm'));
  }
  for (const S of SEQ) {
    const feed = { x: new ort.Tensor('float32', Float32Array.from({ length: S * K }, () => rand() * 2 - 1), [1, S, K]) };
    const times: number[][] = VARIANTS.map(() => []);
    for (const s of sessions) await s.run(feed); // warm-up: first-run allocations and prepacking
    for (let r = 0; r < rounds; r++) {
      for (let i = 0; i < sessions.length; i++) {
        const t0 = performance.now();
        await sessions[i]!.run(feed);
        times[i]!.push(performance.now() - t0);
      }
    }
    rows.push({ K, N, role, S, ms: Object.fromEntries(VARIANTS.map((v, i) => [v.id, median(times[i]!)])) });
    if (!asJson) process.stderr.write(`${K}x${N} S=${S} done\n`);
  }
  for (const s of sessions) await s.release();
}

if (asJson) {
  console.log(JSON.stringify({ rounds, threads: 1, rows }));
} else {
  const ids = VARIANTS.map((v) => v.id);
  console.log(`| K x N (role) | S | ${ids.join(' | ')} | fastest |`);
  console.log(`|---|---|${ids.map(() => '---|').join('')}---|`);
  for (const r of rows) {
    const best = ids.reduce((a, b) => (r.ms[b]! < r.ms[a]! ? b : a));
    const cells = ids.map((id) => `${r.ms[id]!.toFixed(3)} (${(r.ms['f32 MatMul']! / r.ms[id]!).toFixed(2)}x)`);
    console.log(`| ${r.K} x ${r.N} (${r.role}) | ${r.S} | ${cells.join(' | ')} | ${best} |`);
  }
  console.log(`\nms per run, median of ${rounds} interleaved rounds; (Nx) = speed vs fp32 MatMul.`);
}
