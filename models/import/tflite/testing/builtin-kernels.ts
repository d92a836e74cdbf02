/**
 * TEST-ONLY: makes a hand-written .tflite run on TFLite's builtin kernels, like the Lyra models.
 *
 * The oracle (tfjs-tflite) hands a plain model to its XNNPACK delegate, whose float convs sum in
 * another order than TFLite's own kernels (measured: XNNPACK starts at the bias and adds every
 * product in order; the builtin GEMM uses two accumulators and adds the bias last). A model with a
 * resource variable, as all three Lyra models have, is not delegated. This adds an unused one
 * (CALL_ONCE init, VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE of a [1] float) to subgraph 0.
 */
import type { WSubgraph } from './tflite-writer.ts';

const CALL_ONCE = 129;
const VAR_HANDLE = 142;
const READ_VARIABLE = 143;
const ASSIGN_VARIABLE = 144;
const CALL_ONCE_OPTIONS = 103;
const VAR_HANDLE_OPTIONS = 111;

/** [main with the variable, its init subgraph]: pass the result to writeTflite. */
export function onBuiltinKernels(main: WSubgraph): WSubgraph[] {
  const handle = { type: VAR_HANDLE_OPTIONS, fields: [{ slot: 1, kind: 'str' as const, value: 'unused_state' }] };
  const base = main.tensors.length;
  const zero = new Uint8Array(4);
  const withVar: WSubgraph = {
    ...main,
    tensors: [...main.tensors, { shape: [], type: 13 }, { shape: [1], type: 0 }],
    ops: [
      { code: CALL_ONCE, inputs: [], outputs: [], options: { type: CALL_ONCE_OPTIONS, fields: [{ slot: 0, kind: 'i32', value: 1 }] } },
      { code: VAR_HANDLE, inputs: [], outputs: [base], options: handle },
      { code: READ_VARIABLE, inputs: [base], outputs: [base + 1] },
      ...main.ops,
      { code: ASSIGN_VARIABLE, inputs: [base, base + 1], outputs: [] },
    ],
  };
  const init: WSubgraph = {
    name: 'init',
    tensors: [
      { shape: [], type: 13 },
      { shape: [1], type: 0, data: zero },
    ],
    inputs: [],
    outputs: [],
    ops: [
      { code: VAR_HANDLE, inputs: [], outputs: [0], options: handle },
      { code: ASSIGN_VARIABLE, inputs: [0, 1], outputs: [] },
    ],
  };
  return [withVar, init];
}
