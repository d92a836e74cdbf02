/**
 * TFLite subgraph -> ONNX graph.
 *
 * Resource variables (VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE) become explicit state:
 * each variable is a graph input `state_in:<name>` and a graph output `state_out:<name>`
 * holding the last value assigned to it, and its initial value is what the CALL_ONCE init
 * subgraph assigns (constants, evaluated here at import time). The caller feeds state_out of
 * one call as state_in of the next: that is the streaming conv history.
 */
import type { BuiltModel, DType } from '../../onnx/builder.ts';
import { WhittleError } from '../../../core/errors.ts';
import { Ctx, f32, onnxType } from './context.ts';
import * as B from './ops-basic.ts';
import { conv2d, transposeConv } from './ops-conv.ts';
import type { RequantMode } from './requant.ts';
import type { FloatConvOrder } from './float-order.ts';
import { TfType, opName, type TfModel, type TfOperator, type TfSubgraph } from './schema.ts';

/** One streaming state tensor of a converted graph. */
export interface StateSpec {
  /** The TFLite variable's shared_name. */
  name: string;
  inputName: string;
  outputName: string;
  shape: number[];
  /** The value the CALL_ONCE initializer assigns (zeros when there is none). */
  init: Float32Array;
}

export interface IoSpec {
  name: string;
  dtype: DType;
  shape: number[];
}

export interface ConvertedGraph {
  built: BuiltModel;
  inputs: IoSpec[];
  outputs: IoSpec[];
  states: StateSpec[];
  /** ONNX node count (what onnxruntime-web pays per run, before its own fusions). */
  nodeCount: number;
}

type Handler = (ctx: Ctx, op: TfOperator) => void;

const HANDLERS: Record<number, Handler> = {
  0: (c, o) => B.binary(c, o, 'Add'),
  2: B.concatenation,
  3: (c, o) => conv2d(c, o, false),
  4: (c, o) => conv2d(c, o, true),
  6: B.dequantize,
  18: (c, o) => B.binary(c, o, 'Mul'),
  22: B.reshape,
  36: B.gather,
  41: (c, o) => B.binary(c, o, 'Sub'),
  45: B.stridedSlice,
  49: B.split,
  53: B.cast,
  55: (c, o) => B.maxMin(c, o, 'Max'),
  56: (c, o) => B.argMinMax(c, o, 'ArgMax'),
  57: (c, o) => B.maxMin(c, o, 'Min'),
  58: (c, o) => B.compare(c, o, 'Less'),
  61: (c, o) => B.compare(c, o, 'Greater'),
  67: transposeConv,
  71: (c, o) => B.compare(c, o, 'Equal'),
  72: (c, o) => B.compare(c, o, 'NotEqual'),
  74: (c, o) => B.reduce(c, o, 'ReduceSum'),
  79: (c, o) => B.argMinMax(c, o, 'ArgMin'),
  83: B.pack,
  85: B.oneHot,
  98: B.leakyRelu,
  99: B.squaredDifference,
  114: B.quantize,
};

const CALL_ONCE = 129;
const VAR_HANDLE = 142;
const READ_VARIABLE = 143;
const ASSIGN_VARIABLE = 144;

function varName(ctx: Ctx, op: TfOperator): string {
  const shared = op.options?.string(1);
  return shared && shared.length > 0 ? shared : ctx.tensor(op.outputs[0]!).name;
}

/** Evaluates a CALL_ONCE init subgraph: it may only assign constants to variables. */
function initialValues(model: TfModel, sg: TfSubgraph): Map<string, Float32Array> {
  const handles = new Map<number, string>();
  const values = new Map<string, Float32Array>();
  for (const op of sg.operators) {
    if (op.code === VAR_HANDLE) {
      const shared = op.options?.string(1);
      handles.set(op.outputs[0]!, shared && shared.length > 0 ? shared : sg.tensors[op.outputs[0]!]!.name);
    } else if (op.code === ASSIGN_VARIABLE) {
      const key = handles.get(op.inputs[0]!);
      const t = sg.tensors[op.inputs[1]!];
      if (key === undefined || !t?.data || t.type !== TfType.FLOAT32) {
        throw new WhittleError('UNSUPPORTED', `${model.name}: CALL_ONCE initializer assigns a non-constant or non-float value`, {
          model: model.name,
        });
      }
      values.set(key, f32(t.data));
    } else {
      throw new WhittleError('UNSUPPORTED', `${model.name}: ${opName(op.code, op.customCode)} in a CALL_ONCE initializer`, {
        model: model.name,
        op: opName(op.code, op.customCode),
      });
    }
  }
  return values;
}

/**
 * Converts subgraph `index` of `model`. `io` renames the subgraph's inputs/outputs (from a
 * SignatureDef); without it the TFLite tensor names are used.
 */
export function convertSubgraph(
  model: TfModel,
  index: number,
  io?: { inputs: { name: string; tensor: number }[]; outputs: { name: string; tensor: number }[] },
  /** Debugging: also output these intermediate tensors as `t<index>` (quantized ones as centered ints). */
  probes: number[] = [],
  requant: RequantMode = 'exact-f64',
  /** 'tflite' sums float convs in TFLite's order (bit-exact, slower; float-order.ts). */
  floatConvOrder: FloatConvOrder = 'fast',
): ConvertedGraph {
  const sg = model.subgraphs[index];
  if (!sg) throw new WhittleError('BAD_MODEL', `${model.name}: no subgraph ${index}`, { model: model.name });
  const ctx = new Ctx(model, sg, `${model.name.replace(/\.tflite$/, '')}_${sg.name}`, requant, floatConvOrder);
  const g = ctx.g;
  const inputs = (io?.inputs ?? sg.inputs.map((t) => ({ name: ctx.tensor(t).name, tensor: t }))).map(({ name, tensor }) => {
    const t = ctx.tensor(tensor);
    if (t.quant && t.type !== TfType.FLOAT32)
      throw new WhittleError('UNSUPPORTED', `${model.name}: quantized graph input ${t.name}`, { model: model.name });
    const spec: IoSpec = { name, dtype: onnxType(t), shape: t.shape };
    ctx.set(tensor, g.input(name, spec.dtype, spec.shape), spec.dtype);
    return spec;
  });

  let init = new Map<string, Float32Array>();
  const states: StateSpec[] = [];
  const readVar = (key: string, shape: number[]) => {
    let cur = ctx.vars.get(key);
    if (!cur) {
      const spec: StateSpec = {
        name: key,
        inputName: `state_in:${key}`,
        outputName: `state_out:${key}`,
        shape,
        init: init.get(key) ?? new Float32Array(shape.reduce((a, b) => a * b, 1)),
      };
      states.push(spec);
      cur = { value: g.input(spec.inputName, 'float32', shape), dtype: 'float32', shape, q: null };
      ctx.vars.set(key, cur);
    }
    return cur;
  };

  for (const op of sg.operators) {
    if (op.code === CALL_ONCE) {
      const initIndex = op.options?.i32(0) ?? -1;
      const initSg = model.subgraphs[initIndex];
      if (!initSg)
        throw new WhittleError('BAD_MODEL', `${model.name}: CALL_ONCE names missing subgraph ${initIndex}`, { model: model.name });
      init = initialValues(model, initSg);
    } else if (op.code === VAR_HANDLE) {
      ctx.handles.set(op.outputs[0]!, varName(ctx, op));
    } else if (op.code === READ_VARIABLE) {
      const key = ctx.handles.get(op.inputs[0]!);
      if (key === undefined) throw ctx.fail(op, 'on a resource that is not a VAR_HANDLE');
      const shape = ctx.tensor(op.outputs[0]!).shape;
      const cur = readVar(key, shape);
      ctx.set(op.outputs[0]!, cur.value, 'float32');
    } else if (op.code === ASSIGN_VARIABLE) {
      const key = ctx.handles.get(op.inputs[0]!);
      if (key === undefined) throw ctx.fail(op, 'on a resource that is not a VAR_HANDLE');
      const v = ctx.get(op.inputs[1]!);
      if (v.q || v.dtype !== 'float32') throw ctx.fail(op, 'of a non-float value');
      readVar(key, v.shape); // registers the state even if it is never read
      ctx.vars.set(key, v);
    } else {
      const handler = HANDLERS[op.code];
      if (!handler) throw ctx.fail(op, `is not supported by the TFLite importer (model ${model.name})`);
      handler(ctx, op);
    }
  }

  const outputs = (io?.outputs ?? sg.outputs.map((t) => ({ name: ctx.tensor(t).name, tensor: t }))).map(({ name, tensor }) => {
    const tv = ctx.get(tensor);
    if (tv.q) throw new WhittleError('UNSUPPORTED', `${model.name}: quantized graph output ${name}`, { model: model.name });
    // Outputs that are inputs or constants need their own node to carry the output name.
    g.output(g.op('Identity', [tv.value], {}, { outputName: name }), tv.dtype, tv.shape);
    return { name, dtype: tv.dtype, shape: tv.shape };
  });
  for (const p of probes) {
    const tv = ctx.get(p);
    g.output(g.op('Identity', [tv.value], {}, { outputName: `t${p}` }), tv.dtype, tv.shape);
  }
  for (const s of states) {
    const cur = ctx.vars.get(s.name)!;
    g.output(g.op('Identity', [cur.value], {}, { outputName: s.outputName }), 'float32', s.shape);
  }
  return { built: g.build(), inputs, outputs, states, nodeCount: g.nodeCount };
}
