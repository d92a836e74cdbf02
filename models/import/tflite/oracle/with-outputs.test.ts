/** withSubgraphOutputs: the real TFLite returns an intermediate tensor once it is made an output. */
import { describe, expect, it } from 'vitest';
import { OracleModel } from './tflite-oracle.ts';
import { withSubgraphOutputs } from './with-outputs.ts';
import { writeTflite, type WSubgraph } from '../testing/tflite-writer.ts';

describe('withSubgraphOutputs', () => {
  it('makes an intermediate tensor (and the old output) subgraph outputs, in the order asked', async () => {
    const add = { type: 11, fields: [{ slot: 0, kind: 'i8' as const, value: 0 }] }; // AddOptions, no activation
    const sg: WSubgraph = {
      tensors: [0, 1, 2].map(() => ({ shape: [1, 3], type: 0 })),
      inputs: [0],
      outputs: [2],
      ops: [
        { code: 0, inputs: [0, 0], outputs: [1], options: add }, // t1 = x + x
        { code: 0, inputs: [1, 0], outputs: [2], options: add }, // t2 = t1 + x
      ],
    };
    const x = Float32Array.of(1, -2, 0.5);
    const oracle = await OracleModel.create(withSubgraphOutputs(writeTflite([sg]), [1, 2]));
    const [t1, t2] = oracle.run([x]);
    oracle.dispose();
    expect(Array.from(t1!)).toEqual([2, -4, 1]);
    expect(Array.from(t2!)).toEqual([3, -6, 1.5]);
  });
});
