/**
 * Conversion state for one TFLite subgraph -> one ONNX graph.
 *
 * Value representation (why): TFLite tensors keep their NHWC layout and dtype. Quantized
 * int8/uint8 activations are carried as float32 tensors holding the *centered integer*
 * `q - zero_point`. Integer math on such values is exact in float32 while partial sums stay
 * below 2^24, so an int8 conv becomes `Conv(x_c, w_int) + b_int` (the exact int32 accumulator)
 * followed by the requantization `clip(round(acc * M), lo, hi)`, which is what TFLite does
 * (up to its fixed-point rounding of M). The zero point only shows up in the clip bounds.
 */
import { GraphBuilder, type DType, type TensorData, type Value } from '../../onnx/builder.ts';
import { WhittleError } from '../../../core/errors.ts';
import type { RequantMode } from './requant.ts';
import type { FloatConvOrder } from './float-order.ts';
import { TfType, opName, type TfModel, type TfOperator, type TfSubgraph, type TfTensor } from './schema.ts';

export interface QParams {
  scale: number;
  zeroPoint: number;
}

/** One converted tensor. `q` is set for quantized activations (centered integer in float32). */
export interface Tv {
  value: Value;
  dtype: DType;
  shape: number[];
  q: QParams | null;
}

export class Ctx {
  readonly g: GraphBuilder;
  readonly values = new Map<number, Tv>();
  /** Resource tensor index -> variable key (shared_name). */
  readonly handles = new Map<number, string>();
  /** Variable key -> its current value (graph input first, then the last assigned value). */
  readonly vars = new Map<string, Tv>();
  constructor(
    readonly model: TfModel,
    readonly sg: TfSubgraph,
    graphName: string,
    /** How int8 requantization is emulated (see requant.ts). */
    readonly requant: RequantMode = 'exact-f64',
    /** How float convs sum their products (see float-order.ts). */
    readonly floatConvOrder: FloatConvOrder = 'fast',
  ) {
    this.g = new GraphBuilder(graphName);
  }

  tensor(i: number): TfTensor {
    const t = this.sg.tensors[i];
    if (!t) throw new WhittleError('BAD_MODEL', `${this.model.name}: tensor index ${i} out of range`, { model: this.model.name });
    return t;
  }

  fail(op: TfOperator, why: string): WhittleError {
    return new WhittleError('UNSUPPORTED', `${this.model.name}: ${opName(op.code, op.customCode)} ${why}`, {
      model: this.model.name,
      op: opName(op.code, op.customCode),
    });
  }

  /** 'float' mode: int8 tensors are carried as their real values, never as centered integers. */
  get float(): boolean {
    return this.requant === 'float';
  }

  /** Quantization of an activation as this graph carries it: always null in 'float' mode. */
  qOf(i: number): QParams | null {
    return this.float ? null : activationQ(this.tensor(i));
  }

  /** The ONNX value of TFLite tensor `i`, materializing constants on first use. */
  get(i: number): Tv {
    const have = this.values.get(i);
    if (have) return have;
    const t = this.tensor(i);
    if (!t.data)
      throw new WhittleError('BAD_MODEL', `${this.model.name}: tensor ${t.name} is used before it is produced`, { model: this.model.name });
    const tv = this.constTensor(t);
    this.values.set(i, tv);
    return tv;
  }

  set(i: number, value: Value, dtype: DType, q: QParams | null = null): Tv {
    const tv: Tv = { value, dtype, shape: this.tensor(i).shape, q };
    this.values.set(i, tv);
    return tv;
  }

  /** A TFLite constant as an ONNX initializer: float stays float, quantized becomes centered ints. */
  private constTensor(t: TfTensor): Tv {
    const name = `c${t.index}_${t.name}`.slice(0, 80);
    const q = activationQ(t);
    if (q && this.float) return this.realConst(name, t);
    switch (t.type) {
      case TfType.FLOAT32:
        return { value: this.g.constant(name, 'float32', t.shape, f32(t.data!)), dtype: 'float32', shape: t.shape, q: null };
      case TfType.INT32:
        if (q)
          return {
            value: this.g.constant(
              name,
              'float32',
              t.shape,
              Float32Array.from(i32(t.data!), (v) => v - q.zeroPoint),
            ),
            dtype: 'float32',
            shape: t.shape,
            q,
          };
        return { value: this.g.constant(name, 'int32', t.shape, i32(t.data!)), dtype: 'int32', shape: t.shape, q: null };
      case TfType.INT64:
        return {
          value: this.g.constant(name, 'int64', t.shape, new BigInt64Array(copy(t.data!))),
          dtype: 'int64',
          shape: t.shape,
          q: null,
        };
      case TfType.BOOL:
        return { value: this.g.constant(name, 'bool', t.shape, new Uint8Array(t.data!)), dtype: 'bool', shape: t.shape, q: null };
      case TfType.INT8:
      case TfType.UINT8: {
        if (!t.quant)
          throw new WhittleError(
            'UNSUPPORTED',
            `${this.model.name}: unquantized ${t.type === TfType.INT8 ? 'int8' : 'uint8'} constant ${t.name}`,
            { model: this.model.name },
          );
        const raw = t.type === TfType.INT8 ? new Int8Array(copy(t.data!)) : new Uint8Array(copy(t.data!));
        const zp = t.quant.zeroPoint[0] ?? 0;
        return {
          value: this.g.constant(
            name,
            'float32',
            t.shape,
            Float32Array.from(raw, (v) => v - zp),
          ),
          dtype: 'float32',
          shape: t.shape,
          q: { scale: t.quant.scale[0]!, zeroPoint: zp },
        };
      }
      default:
        throw new WhittleError('UNSUPPORTED', `${this.model.name}: constant ${t.name} of TFLite type ${t.type}`, {
          model: this.model.name,
        });
    }
  }

  /** 'float' mode: a quantized constant as its real values (q - zero_point) * scale, per channel. */
  private realConst(name: string, t: TfTensor): Tv {
    const data = dequantizeConst(t);
    if (!data) throw new WhittleError('UNSUPPORTED', `${this.model.name}: quantized constant ${t.name} of TFLite type ${t.type}`);
    return { value: this.g.constant(name, 'float32', t.shape, data), dtype: 'float32', shape: t.shape, q: null };
  }

  /** Constant int data of a tensor (shapes, axes, begin/end). */
  constInts(i: number, op: TfOperator): number[] {
    const t = this.tensor(i);
    if (!t.data) throw this.fail(op, `needs a constant ${t.name}`);
    if (t.type === TfType.INT32) return Array.from(i32(t.data));
    if (t.type === TfType.INT64) return Array.from(new BigInt64Array(copy(t.data)), Number);
    throw this.fail(op, `needs int32/int64 constant ${t.name}`);
  }

  /** Constant float data (dequantized for quantized tensors), for weights folded at import time. */
  constFloats(i: number): Float32Array | null {
    const t = this.tensor(i);
    if (!t.data) return null;
    if (t.type === TfType.FLOAT32) return f32(t.data);
    return null;
  }

  /** Reshape to a static shape (no-op when equal). */
  reshape(v: Value, from: readonly number[], to: readonly number[]): Value {
    if (from.length === to.length && from.every((d, k) => d === to[k])) return v;
    return this.g.op('Reshape', [v, this.g.ints(to, 'shape')]);
  }
}

/** Quantization of an activation (per-tensor), or null. */
export function activationQ(t: TfTensor): QParams | null {
  if (!t.quant) return null;
  if (t.type !== TfType.INT8 && t.type !== TfType.UINT8 && t.type !== TfType.INT32) return null;
  return { scale: t.quant.scale[0]!, zeroPoint: t.quant.zeroPoint[0] ?? 0 };
}

/**
 * Real values of a quantized constant (int8/uint8/int32), per-channel scales along `quant.axis`;
 * null for other types. Used by 'float' mode for weights, biases and constant activations.
 */
export function dequantizeConst(t: TfTensor): Float32Array | null {
  if (!t.data || !t.quant) return null;
  const raw =
    t.type === TfType.INT8
      ? new Int8Array(copy(t.data))
      : t.type === TfType.UINT8
        ? new Uint8Array(copy(t.data))
        : t.type === TfType.INT32
          ? i32(t.data)
          : null;
  if (!raw) return null;
  const { scale, zeroPoint, axis } = t.quant;
  // Element k's channel along `axis` in a row-major array of `shape`.
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const dim = t.shape[axis] ?? 1;
  return Float32Array.from(raw, (v, k) => {
    const c = scale.length === 1 ? 0 : Math.floor(k / inner) % dim;
    return (v - (zeroPoint[zeroPoint.length === 1 ? 0 : c] ?? 0)) * scale[c]!;
  });
}

/** Copy into an aligned buffer (flatbuffer data need not be 4-aligned for typed views). */
export function copy(b: Uint8Array): ArrayBuffer {
  return b.slice().buffer as ArrayBuffer;
}
export function f32(b: Uint8Array): Float32Array {
  return new Float32Array(copy(b));
}
export function i32(b: Uint8Array): Int32Array {
  return new Int32Array(copy(b));
}

export function onnxType(t: TfTensor): DType {
  if (activationQ(t)) return 'float32';
  switch (t.type) {
    case TfType.FLOAT32:
      return 'float32';
    case TfType.INT32:
      return 'int32';
    case TfType.INT64:
      return 'int64';
    case TfType.BOOL:
      return 'bool';
    default:
      throw new WhittleError('UNSUPPORTED', `TFLite tensor type ${t.type} (${t.name})`);
  }
}

export type { TensorData };
