import { describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-web';
import { GraphBuilder, float } from './builder.ts';

ort.env.wasm.numThreads = 1;

describe('GraphBuilder', () => {
  it('builds a graph with external weights that onnxruntime runs', async () => {
    // y = LayerNorm-free affine: y = x @ W^T + b, with W large enough to go external.
    const n = 40;
    const m = 16;
    const w = Float32Array.from({ length: m * n }, (_, i) => Math.sin(i) * 0.1); // [m, n]
    const b = Float32Array.from({ length: m }, (_, i) => i * 0.01);
    const g = new GraphBuilder('affine');
    const x = g.input('x', 'float32', ['batch', n]);
    const wv = g.constant('w', 'float32', [m, n], w);
    const bv = g.constant('b', 'float32', [m], b);
    const y = g.op('Gemm', [x, wv, bv], { transB: 1, alpha: float(1) });
    g.output(y, 'float32', ['batch', m], 'y');
    const built = g.build();
    expect(built.externalData).toHaveLength(1); // w is 2560 bytes -> external; b is inline
    expect(built.externalData[0]!.data.buffer).toBe(w.buffer); // a view, not a copy

    const session = await ort.InferenceSession.create(built.model, { externalData: built.externalData });
    const input = Float32Array.from({ length: 2 * n }, (_, i) => Math.cos(i));
    const out = await session.run({ x: new ort.Tensor('float32', input, [2, n]) });
    const got = out.y!.data as Float32Array;
    for (let r = 0; r < 2; r++) {
      for (let j = 0; j < m; j++) {
        let acc = b[j]!;
        for (let k = 0; k < n; k++) acc += input[r * n + k]! * w[j * n + k]!;
        expect(got[r * m + j]).toBeCloseTo(acc, 5);
      }
    }
    await session.release();
  });

  it('writes negative int attributes and int64 constants', async () => {
    const g = new GraphBuilder('reduce');
    const x = g.input('x', 'float32', [2, 3]);
    const s = g.op('ReduceSum', [x, g.ints([-1])], { keepdims: 0 });
    g.output(s, 'float32', [2], 's');
    const built = g.build();
    const session = await ort.InferenceSession.create(built.model);
    const out = await session.run({ x: new ort.Tensor('float32', new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]) });
    expect(Array.from(out.s!.data as Float32Array)).toEqual([6, 15]);
  });

  it('If branches read the outer graph\'s inputs and external initializers (no copy) and keep their own constants inline', async () => {
    const n = 1024; // w is 4 KB: external in the outer graph
    const w = Float32Array.from({ length: n }, (_, i) => i * 0.5);
    const g = new GraphBuilder('branches');
    const cond = g.input('cond', 'bool', []);
    const x = g.input('x', 'float32', [n]);
    const wv = g.constant('w', 'float32', [n], w);
    const then = g.branch('then');
    then.output(then.op('Mul', [x, wv]), 'float32', [n], 'y_then');
    const otherwise = g.branch('else');
    otherwise.output(otherwise.op('Add', [x, otherwise.scalar(1)]), 'float32', [n], 'y_else');
    g.output(g.op('If', [cond], { then_branch: { kind: 'graph', graph: then }, else_branch: { kind: 'graph', graph: otherwise } }, { outputName: 'y' }), 'float32', [n], 'y');
    const built = g.build();
    expect(built.externalData.map((e) => e.data.buffer)).toEqual([w.buffer]);
    const session = await ort.InferenceSession.create(built.model, { externalData: built.externalData });
    const input = Float32Array.from({ length: n }, (_, i) => i % 7);
    for (const c of [true, false]) {
      const out = await session.run({ cond: new ort.Tensor('bool', Uint8Array.of(c ? 1 : 0), []), x: new ort.Tensor('float32', input, [n]) });
      expect(Array.from(out.y!.data as Float32Array)).toEqual(Array.from(input, (v, i) => (c ? v * w[i]! : v + 1)));
    }
    await session.release();
  });
});
