/**
 * TEST-ONLY: writes tiny .tflite flatbuffers (one main subgraph plus optional init subgraphs)
 * so importer tests can use hand-made cases that the real TFLite interpreter also accepts.
 */
import { Builder } from 'flatbuffers';

export interface WTensor {
  shape: number[];
  /** TensorType: 0 f32, 2 i32, 4 i64, 6 bool, 9 i8, 13 resource. */
  type: number;
  data?: Uint8Array;
  quant?: { scale: number[]; zeroPoint: number[]; axis?: number };
  name?: string;
}

export type OptField = { slot: number; kind: 'i8' | 'i32' | 'f32' | 'str'; value: number | string };

export interface WOp {
  /** BuiltinOperator code. */
  code: number;
  inputs: number[];
  outputs: number[];
  /** BuiltinOptions union index (1 = Conv2DOptions, ...) and the option table's fields. */
  options?: { type: number; fields: OptField[] };
}

export interface WSubgraph {
  tensors: WTensor[];
  inputs: number[];
  outputs: number[];
  ops: WOp[];
  name?: string;
}

export function bytesOf(a: Float32Array | Int32Array | Int8Array | BigInt64Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

export function writeTflite(subgraphs: WSubgraph[]): Uint8Array {
  const b = new Builder(1024);
  b.forceDefaults(true);
  const codes: number[] = [];
  for (const sg of subgraphs) for (const op of sg.ops) if (!codes.includes(op.code)) codes.push(op.code);
  const buffers: Uint8Array[] = [new Uint8Array(0)];

  const i32Vec = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addInt32(xs[i]!);
    return b.endVector();
  };
  const f32Vec = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addFloat32(xs[i]!);
    return b.endVector();
  };
  const i64Vec = (xs: number[]) => {
    b.startVector(8, xs.length, 8);
    for (let i = xs.length - 1; i >= 0; i--) b.addInt64(BigInt(xs[i]!));
    return b.endVector();
  };
  const offVec = (xs: number[]) => {
    b.startVector(4, xs.length, 4);
    for (let i = xs.length - 1; i >= 0; i--) b.addOffset(xs[i]!);
    return b.endVector();
  };

  const sgOffsets = subgraphs.map((sg) => {
    const tensorOffs = sg.tensors.map((t, i) => {
      let buffer = 0;
      if (t.data) {
        buffers.push(t.data);
        buffer = buffers.length - 1;
      }
      const name = b.createString(t.name ?? `t${i}`);
      const shape = i32Vec(t.shape);
      let quant = 0;
      if (t.quant) {
        const scale = f32Vec(t.quant.scale);
        const zp = i64Vec(t.quant.zeroPoint);
        b.startObject(7);
        b.addFieldOffset(2, scale, 0);
        b.addFieldOffset(3, zp, 0);
        b.addFieldInt32(6, t.quant.axis ?? 0, 0);
        quant = b.endObject();
      }
      b.startObject(10);
      b.addFieldOffset(0, shape, 0);
      b.addFieldInt8(1, t.type, 0);
      b.addFieldInt32(2, buffer, 0);
      b.addFieldOffset(3, name, 0);
      if (quant) b.addFieldOffset(4, quant, 0);
      b.addFieldInt8(8, 1, 0); // has_rank
      return b.endObject();
    });
    const opOffs = sg.ops.map((op) => {
      const ins = i32Vec(op.inputs);
      const outs = i32Vec(op.outputs);
      let opts = 0;
      if (op.options) {
        const strs = op.options.fields.map((f) => (f.kind === 'str' ? b.createString(String(f.value)) : 0));
        const maxSlot = Math.max(0, ...op.options.fields.map((f) => f.slot)) + 1;
        b.startObject(maxSlot);
        op.options.fields.forEach((f, k) => {
          if (f.kind === 'i8') b.addFieldInt8(f.slot, Number(f.value), 0);
          else if (f.kind === 'i32') b.addFieldInt32(f.slot, Number(f.value), 0);
          else if (f.kind === 'f32') b.addFieldFloat32(f.slot, Number(f.value), 0);
          else b.addFieldOffset(f.slot, strs[k]!, 0);
        });
        opts = b.endObject();
      }
      b.startObject(5);
      b.addFieldInt32(0, codes.indexOf(op.code), 0);
      b.addFieldOffset(1, ins, 0);
      b.addFieldOffset(2, outs, 0);
      if (op.options) {
        b.addFieldInt8(3, op.options.type, 0);
        b.addFieldOffset(4, opts, 0);
      }
      return b.endObject();
    });
    const tensors = offVec(tensorOffs);
    const inputs = i32Vec(sg.inputs);
    const outputs = i32Vec(sg.outputs);
    const ops = offVec(opOffs);
    const name = b.createString(sg.name ?? 'main');
    b.startObject(5);
    b.addFieldOffset(0, tensors, 0);
    b.addFieldOffset(1, inputs, 0);
    b.addFieldOffset(2, outputs, 0);
    b.addFieldOffset(3, ops, 0);
    b.addFieldOffset(4, name, 0);
    return b.endObject();
  });

  const codeOffs = codes.map((c) => {
    b.startObject(4);
    b.addFieldInt8(0, Math.min(c, 127), 0);
    b.addFieldInt32(2, 1, 1);
    b.addFieldInt32(3, c, 0);
    return b.endObject();
  });
  const bufferOffs = buffers.map((d) => {
    let data = 0;
    if (d.length > 0) {
      b.startVector(1, d.length, 16);
      for (let i = d.length - 1; i >= 0; i--) b.addInt8(d[i]!);
      data = b.endVector();
    }
    b.startObject(3);
    if (data) b.addFieldOffset(0, data, 0);
    return b.endObject();
  });
  const opCodes = offVec(codeOffs);
  const sgs = offVec(sgOffsets);
  const bufs = offVec(bufferOffs);
  const desc = b.createString('whittle test model');
  b.startObject(8);
  b.addFieldInt32(0, 3, 0);
  b.addFieldOffset(1, opCodes, 0);
  b.addFieldOffset(2, sgs, 0);
  b.addFieldOffset(3, desc, 0);
  b.addFieldOffset(4, bufs, 0);
  b.finish(b.endObject(), 'TFL3');
  return b.asUint8Array().slice();
}
