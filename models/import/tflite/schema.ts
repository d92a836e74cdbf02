/**
 * TFLite model as plain objects, read from the flatbuffer (schema.fbs field order).
 * Only what the importer needs; builtin options stay as lazy `Table`s read per op.
 */
import { Fb, FbError, type Table, badModel } from './flatbuffer.ts';

/** TensorType enum of schema.fbs. */
export const enum TfType {
  FLOAT32 = 0,
  FLOAT16 = 1,
  INT32 = 2,
  UINT8 = 3,
  INT64 = 4,
  BOOL = 6,
  INT16 = 7,
  INT8 = 9,
  RESOURCE = 13,
}

export interface TfQuant {
  scale: number[];
  zeroPoint: number[];
  /** The axis scales apply along (per-channel quantization). */
  axis: number;
}

export interface TfTensor {
  index: number;
  name: string;
  shape: number[];
  type: number;
  /** Constant data (a view into the file), or null for activations. */
  data: Uint8Array | null;
  quant: TfQuant | null;
}

export interface TfOperator {
  /** BuiltinOperator code, or -1 for custom ops. */
  code: number;
  customCode: string | null;
  inputs: number[];
  outputs: number[];
  options: Table | null;
}

export interface TfSubgraph {
  index: number;
  name: string;
  tensors: TfTensor[];
  inputs: number[];
  outputs: number[];
  operators: TfOperator[];
}

export interface TfSignature {
  key: string;
  subgraph: number;
  inputs: { name: string; tensor: number }[];
  outputs: { name: string; tensor: number }[];
}

export interface TfModel {
  name: string;
  subgraphs: TfSubgraph[];
  signatures: TfSignature[];
}

/**
 * Parses a .tflite file. A file that is not a TFLite flatbuffer, or is truncated, throws
 * `WhittleError('BAD_MODEL')` naming `name`.
 */
export function readTflite(buffer: ArrayBuffer | Uint8Array, name: string): TfModel {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  if (bytes.byteLength < 8) throw badModel(name, `only ${bytes.byteLength} bytes`);
  const ident = String.fromCharCode(...bytes.subarray(4, 8));
  if (ident !== 'TFL3') throw badModel(name, `file identifier is not TFL3`);
  try {
    return parse(new Fb(bytes), name);
  } catch (err) {
    if (err instanceof FbError || err instanceof RangeError) throw badModel(name, err.message, err);
    throw err;
  }
}

function parse(fb: Fb, name: string): TfModel {
  const model = fb.root();
  const buffers = model.tables(4).map((b) => b.bytes(0));
  const codes = model.tables(1).map((c) => {
    // builtin_code (field 3) supersedes the legacy byte field for codes >= 127.
    const legacy = c.i8(0);
    const code = Math.max(legacy, c.i32(3));
    return { code, custom: c.string(1) };
  });
  const subgraphs = model.tables(2).map((sg, index): TfSubgraph => {
    const tensors = sg.tables(0).map((t, ti): TfTensor => {
      const buf = buffers[t.u32(2)];
      const q = t.table(4);
      const scale = q?.f32s(2) ?? [];
      const tensor: TfTensor = {
        index: ti,
        name: t.string(3) ?? `t${ti}`,
        shape: t.i32s(0),
        type: t.i8(1),
        data: buf && buf.byteLength > 0 ? buf : null,
        quant: q && scale.length > 0 ? { scale, zeroPoint: q.i64s(3), axis: q.i32(6) } : null,
      };
      checkTensor(tensor, fb.bytes.byteLength);
      return tensor;
    });
    const operators = sg.tables(3).map((op): TfOperator => {
      const oc = codes[op.u32(0)];
      if (!oc) throw new FbError(`operator code index ${op.u32(0)} out of range`);
      return {
        code: oc.custom !== null && oc.code === 32 ? -1 : oc.code,
        customCode: oc.custom,
        inputs: op.i32s(1),
        outputs: op.i32s(2),
        options: op.table(4),
      };
    });
    return { index, name: sg.string(4) ?? `subgraph${index}`, tensors, inputs: sg.i32s(1), outputs: sg.i32s(2), operators };
  });
  const signatures = model.tables(7).map((s): TfSignature => ({
    key: s.string(2) ?? '',
    subgraph: s.u32(4),
    inputs: s.tables(0).map((m) => ({ name: m.string(0) ?? '', tensor: m.u32(1) })),
    outputs: s.tables(1).map((m) => ({ name: m.string(0) ?? '', tensor: m.u32(1) })),
  }));
  return { name, subgraphs, signatures };
}

/** Bytes per element of the types with constant data the importer reads. */
const TYPE_BYTES: Readonly<Record<number, number>> = { 0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1 };

/**
 * What a tensor claims, checked before the importer allocates from it: dims are non-negative;
 * the element count is at most the file's byte count (at least 64 Ki): a constant holds one byte
 * or more per element, and an activation or a streaming state (zero-initialized at import) of a
 * real model is far smaller than its weights; constant data is exactly shape x element size; and
 * quantization scales are positive and finite, with one zero point each and, per channel, one
 * scale per entry of the quantized axis.
 */
function checkTensor(t: TfTensor, fileBytes: number): void {
  const maxElements = Math.max(fileBytes, 1 << 16);
  let count = 1;
  for (const d of t.shape) {
    if (d < 0) throw new FbError(`tensor ${t.name} has shape [${t.shape.join(', ')}]`);
    count *= d;
  }
  if (count > maxElements) throw new FbError(`tensor ${t.name} claims ${count} elements, more than the file could justify`);
  const width = TYPE_BYTES[t.type];
  if (t.data && width !== undefined && t.data.byteLength !== count * width) {
    throw new FbError(`tensor ${t.name} of shape [${t.shape.join(', ')}] has ${t.data.byteLength} bytes of data, not ${count * width}`);
  }
  if (t.quant) {
    const { scale, zeroPoint, axis } = t.quant;
    if (!scale.every((s) => s > 0 && Number.isFinite(s)))
      throw new FbError(`tensor ${t.name} has quantization scales that are not positive and finite`);
    if (zeroPoint.length > 1 && zeroPoint.length !== scale.length)
      throw new FbError(`tensor ${t.name} has ${scale.length} scales but ${zeroPoint.length} zero points`);
    if (!zeroPoint.every((z) => Number.isSafeInteger(z) && Math.abs(z) <= 2 ** 31))
      throw new FbError(`tensor ${t.name} has a zero point out of range`);
    if (scale.length > 1 && !(axis >= 0 && axis < t.shape.length && t.shape[axis] === scale.length)) {
      throw new FbError(`tensor ${t.name} has ${scale.length} per-channel scales along axis ${axis} of shape [${t.shape.join(', ')}]`);
    }
  }
}

/** BuiltinOperator names for the codes we meet (errors name the op). */
export const OP_NAMES: Record<number, string> = {
  0: 'ADD',
  2: 'CONCATENATION',
  3: 'CONV_2D',
  4: 'DEPTHWISE_CONV_2D',
  6: 'DEQUANTIZE',
  9: 'FULLY_CONNECTED',
  14: 'LOGISTIC',
  18: 'MUL',
  19: 'RELU',
  22: 'RESHAPE',
  25: 'SOFTMAX',
  28: 'TANH',
  31: 'CALL',
  32: 'CUSTOM',
  34: 'PAD',
  36: 'GATHER',
  39: 'TRANSPOSE',
  40: 'MEAN',
  41: 'SUB',
  42: 'DIV',
  43: 'SQUEEZE',
  45: 'STRIDED_SLICE',
  49: 'SPLIT',
  53: 'CAST',
  55: 'MAXIMUM',
  56: 'ARG_MAX',
  57: 'MINIMUM',
  58: 'LESS',
  67: 'TRANSPOSE_CONV',
  70: 'EXPAND_DIMS',
  72: 'NOT_EQUAL',
  74: 'SUM',
  79: 'ARG_MIN',
  83: 'PACK',
  85: 'ONE_HOT',
  98: 'LEAKY_RELU',
  99: 'SQUARED_DIFFERENCE',
  114: 'QUANTIZE',
  129: 'CALL_ONCE',
  142: 'VAR_HANDLE',
  143: 'READ_VARIABLE',
  144: 'ASSIGN_VARIABLE',
};

export function opName(code: number, custom: string | null = null): string {
  if (code === -1) return `CUSTOM(${custom ?? '?'})`;
  return OP_NAMES[code] ?? `BUILTIN_${code}`;
}
