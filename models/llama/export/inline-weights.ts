/**
 * Rewrites a serialized ModelProto whose initializers live in external data (what GraphBuilder
 * emits) into one self-contained .onnx: every external TensorProto gets its bytes back as
 * `raw_data`. Consumers that load a single file (transformers.js, netron, Python onnx) need
 * this; onnxruntime-web itself takes the external data directly and does not.
 * Only for models under protobuf's 2 GB limit.
 *
 * A minimal protobuf pass: fields are copied byte-for-byte except ModelProto.graph (7) ->
 * GraphProto.initializer (5) -> TensorProto.external_data (13) / data_location (14), replaced by raw_data (9).
 */
import type { BuiltModel } from '../../onnx/builder.ts';

interface Field {
  field: number;
  wire: number;
  start: number; // first byte of the tag
  end: number; // one past the last byte
  payloadStart: number; // for length-delimited fields
}

function readVarint(buf: Uint8Array, pos: number): [number, number] {
  let result = 0;
  let mul = 1;
  for (;;) {
    const b = buf[pos++]!;
    result += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) return [result, pos];
    mul *= 128;
  }
}

function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    let payloadStart = pos;
    if (wire === 0) pos = readVarint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      payloadStart = p2;
      pos = p2 + len;
    } else throw new Error(`unsupported protobuf wire type ${wire}`);
    out.push({ field, wire, start, end: pos, payloadStart });
  }
  return out;
}

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function lengthDelimited(field: number, parts: Uint8Array[]): Uint8Array[] {
  const len = parts.reduce((n, p) => n + p.length, 0);
  return [Uint8Array.from([...varint(field * 8 + 2), ...varint(len)]), ...parts];
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const text = new TextDecoder();

function inlineTensor(buf: Uint8Array, external: Map<string, Uint8Array>): Uint8Array[] {
  const fs = fields(buf);
  const ext = fs.filter((f) => f.field === 13);
  if (ext.length === 0) return [buf];
  const entries = new Map<string, string>();
  for (const e of ext) {
    const entry = buf.subarray(e.payloadStart, e.end);
    const kv = fields(entry);
    const get = (n: number) => kv.find((f) => f.field === n);
    const k = get(1);
    const v = get(2);
    if (k && v) entries.set(text.decode(entry.subarray(k.payloadStart, k.end)), text.decode(entry.subarray(v.payloadStart, v.end)));
  }
  const data = external.get(entries.get('location') ?? '');
  if (!data) throw new Error(`external data '${entries.get('location')}' not provided`);
  const offset = Number(entries.get('offset') ?? 0);
  const length = Number(entries.get('length') ?? data.length - offset);
  const kept = fs.filter((f) => f.field !== 13 && f.field !== 14).map((f) => buf.subarray(f.start, f.end));
  return [...kept, ...lengthDelimited(9, [data.subarray(offset, offset + length)])];
}

/** The built model as one .onnx file with all weights inline. */
export function inlineExternalData(built: BuiltModel): Uint8Array {
  const external = new Map(built.externalData.map((e) => [e.path, e.data]));
  const model = built.model;
  const parts: Uint8Array[] = [];
  for (const f of fields(model)) {
    if (f.field !== 7) {
      parts.push(model.subarray(f.start, f.end));
      continue;
    }
    const graph = model.subarray(f.payloadStart, f.end);
    const graphParts: Uint8Array[] = [];
    for (const gf of fields(graph)) {
      if (gf.field === 5) graphParts.push(...lengthDelimited(5, inlineTensor(graph.subarray(gf.payloadStart, gf.end), external)));
      else graphParts.push(graph.subarray(gf.start, gf.end));
    }
    parts.push(...lengthDelimited(7, graphParts));
  }
  return concat(parts);
}
