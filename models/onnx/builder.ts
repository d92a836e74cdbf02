/**
 * A small typed builder for ONNX graphs.
 *
 * Weights never get copied into the protobuf: every initializer larger than
 * `INLINE_LIMIT` bytes is emitted with `data_location = EXTERNAL`, and `build()` returns
 * the bytes as a list of `{ path, data }` views on the caller's own typed arrays, which
 * is exactly onnxruntime's `SessionOptions.externalData` shape.
 *
 * @example
 * const g = new GraphBuilder('double');
 * const x = g.input('x', 'float32', ['n']);
 * const two = g.constant('two', 'float32', [], new Float32Array([2]));
 * g.output(g.op('Mul', [x, two]), 'float32', ['n']);
 * const { model, externalData } = g.build();
 */
import { ProtoWriter } from './protobuf.ts';

export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';
export type Dim = number | string;
export type TensorData =
  | Float32Array
  | Uint16Array // float16 bits
  | BigInt64Array
  | Int32Array
  | Int8Array
  | Uint8Array;

/** A named value in the graph (graph input, initializer or node output). */
export interface Value {
  readonly name: string;
}

const DTYPE_CODE: Record<DType, number> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
};

/** Attribute values; wrap with `float()` to force a float attribute for an integral number. */
export type Attr = number | string | readonly number[] | FloatAttr | FloatsAttr | GraphAttr;
/** A subgraph attribute (`If` branches), made by `GraphBuilder.branch`. */
export interface GraphAttr {
  readonly kind: 'graph';
  readonly graph: GraphBuilder;
}
export interface FloatAttr {
  readonly kind: 'float';
  readonly value: number;
}
export interface FloatsAttr {
  readonly kind: 'floats';
  readonly value: readonly number[];
}
export const float = (value: number): FloatAttr => ({ kind: 'float', value });
export const floats = (value: readonly number[]): FloatsAttr => ({ kind: 'floats', value });

interface NodeDef {
  opType: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, Attr>;
  name: string;
}
interface TensorDef {
  name: string;
  dtype: DType;
  dims: readonly number[];
  data: TensorData;
}
interface IoDef {
  name: string;
  dtype: DType;
  shape: readonly Dim[];
}

/** Initializers smaller than this are inlined (shapes, axes, scalars). */
const INLINE_LIMIT = 1024;

export interface BuiltModel {
  /** The serialized ModelProto. */
  model: Uint8Array;
  /** External weight files, views on the caller's arrays (no copy). */
  externalData: { path: string; data: Uint8Array }[];
}

export interface BuildOptions {
  /** Default-domain opset; 21 is what onnxruntime-web 1.2x covers well on WASM and WebGPU. */
  opset?: number;
  producer?: string;
  /**
   * Put every weight inside the protobuf (raw_data) instead of external data: for a
   * self-contained .onnx file that other runtimes load on their own (e.g. the benchmark peer).
   */
  embedWeights?: boolean;
}

export class GraphBuilder {
  private readonly nodes: NodeDef[] = [];
  private readonly initializers: TensorDef[] = [];
  private readonly inputs: IoDef[] = [];
  private readonly outputs: IoDef[] = [];
  private counter = 0;

  constructor(
    readonly name: string,
    // A branch shares its parent's names (a subgraph may not redefine an outer value) and domains.
    private readonly usedNames = new Set<string>(),
    private readonly domains = new Set<string>(),
    // Node names stay unique across a graph and its branches.
    private readonly nodePrefix = '',
  ) {}

  /**
   * A subgraph for a control-flow attribute (`If`'s then/else branches): it reads the enclosing
   * graph's values (inputs, initializers, node outputs) by name, so an outer weight is not copied.
   * Declare its results with `output`; its own constants are written inline.
   *
   * @example
   * const then = g.branch('then'); then.output(then.op('Neg', [x]), 'float32', ['n'], 'y_then');
   * g.op('If', [cond], { then_branch: { kind: 'graph', graph: then }, else_branch: ... });
   */
  branch(name: string): GraphBuilder {
    return new GraphBuilder(`${this.name}.${name}`, this.usedNames, this.domains, `${this.name}.${name}.`);
  }

  /** An unused value name with a readable prefix (claimed by whoever defines the value). */
  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.usedNames.has(name));
    return name;
  }

  private claim(name: string): string {
    if (this.usedNames.has(name)) throw new Error(`duplicate value name '${name}' in graph ${this.name}`);
    this.usedNames.add(name);
    return name;
  }

  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    this.inputs.push({ name: this.claim(name), dtype, shape });
    return { name };
  }

  output(value: Value, dtype: DType, shape: readonly Dim[], name?: string): Value {
    let outName = value.name;
    if (name !== undefined && name !== value.name) {
      outName = this.op('Identity', [value], {}, { outputName: name }).name;
    }
    this.outputs.push({ name: outName, dtype, shape });
    return { name: outName };
  }

  /** A constant tensor; large ones become external data referencing `data` without copying it. */
  constant(name: string, dtype: DType, dims: readonly number[], data: TensorData): Value {
    const count = dims.reduce((a, b) => a * b, 1);
    const elementCount = dtype === 'bool' ? data.length : data.length;
    if (count !== elementCount) {
      throw new Error(`constant ${name}: dims [${dims.join(',')}] hold ${count} elements but data has ${elementCount}`);
    }
    this.initializers.push({ name: this.claim(name), dtype, dims, data });
    return { name };
  }

  /** Shorthand for an int64 1-D constant (shapes, axes, starts/ends). */
  ints(values: readonly number[], prefix = 'const'): Value {
    return this.constant(this.fresh(prefix), 'int64', [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  /** Shorthand for a float32 scalar constant. */
  scalar(value: number, prefix = 'scalar'): Value {
    return this.constant(this.fresh(prefix), 'float32', [], new Float32Array([value]));
  }

  /** One node with one output. An empty-string input name means "optional input omitted". */
  op(
    opType: string,
    inputs: readonly (Value | null)[],
    attrs: Record<string, Attr> = {},
    opts: { domain?: string; outputName?: string } = {},
  ): Value {
    const [out] = this.opN(opType, inputs, 1, attrs, { ...opts, outputNames: opts.outputName ? [opts.outputName] : undefined });
    return out!;
  }

  /** One node with `outputCount` outputs. */
  opN(
    opType: string,
    inputs: readonly (Value | null)[],
    outputCount: number,
    attrs: Record<string, Attr> = {},
    opts: { domain?: string; outputNames?: readonly string[] } = {},
  ): Value[] {
    const domain = opts.domain ?? '';
    if (domain !== '') this.domains.add(domain);
    const outputs = Array.from({ length: outputCount }, (_, i) => {
      const wanted = opts.outputNames?.[i];
      return this.claim(wanted ?? this.fresh(opType.toLowerCase()));
    });
    this.nodes.push({
      opType,
      domain,
      inputs: inputs.map((v) => (v === null ? '' : v.name)),
      outputs,
      attrs,
      name: `${this.nodePrefix}${opType}_${this.nodes.length}`,
    });
    return outputs.map((name) => ({ name }));
  }

  get nodeCount(): number {
    return this.nodes.length;
  }

  build(options: BuildOptions = {}): BuiltModel {
    const opset = options.opset ?? 21;
    const externalData: BuiltModel['externalData'] = [];
    const model = new ProtoWriter()
      .varint(1, 10) // ir_version 10 (ONNX 1.16+), understood by onnxruntime 1.2x
      .string(2, options.producer ?? 'whittle')
      .message(7, (graph) => this.writeGraph(graph, externalData, options.embedWeights ?? false));
    model.message(8, (w) => w.string(1, '').varint(2, opset));
    for (const domain of this.domains) {
      model.message(8, (w) => w.string(1, domain).varint(2, 1));
    }
    return { model: model.finish(), externalData };
  }

  /** The GraphProto fields of this graph (the model's, or a branch's inside an attribute). */
  private writeGraph(graph: ProtoWriter, externalData: BuiltModel['externalData'], embed: boolean): void {
    const writeSubgraph = (w: ProtoWriter, sub: GraphBuilder) => sub.writeGraph(w, externalData, true);
    for (const n of this.nodes) graph.message(1, (w) => writeNode(w, n, writeSubgraph));
    graph.string(2, this.name);
    for (const t of this.initializers) {
      graph.message(5, (w) => writeTensor(w, t, externalData, embed));
    }
    for (const io of this.inputs) graph.message(11, (w) => writeValueInfo(w, io));
    for (const io of this.outputs) graph.message(12, (w) => writeValueInfo(w, io));
  }
}

function bytesOf(data: TensorData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function writeTensor(w: ProtoWriter, t: TensorDef, external: BuiltModel['externalData'], embed: boolean): void {
  w.packedVarints(1, t.dims);
  w.varint(2, DTYPE_CODE[t.dtype]);
  w.string(8, t.name);
  const bytes = bytesOf(t.data);
  if (embed || bytes.byteLength <= INLINE_LIMIT) {
    w.bytes(9, bytes.slice()); // raw_data (little-endian, as ONNX requires; so is every JS platform we target)
    return;
  }
  // One external "file" per initializer: a view, so the weights are never concatenated or copied here.
  const path = `w${external.length}_${t.name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  external.push({ path, data: bytes });
  w.message(13, (e) => e.string(1, 'location').string(2, path));
  w.message(13, (e) => e.string(1, 'offset').string(2, '0'));
  w.message(13, (e) => e.string(1, 'length').string(2, String(bytes.byteLength)));
  w.varint(14, 1); // data_location = EXTERNAL
}

function writeValueInfo(w: ProtoWriter, io: IoDef): void {
  w.string(1, io.name);
  w.message(2, (type) =>
    type.message(1, (tensor) => {
      tensor.varint(1, DTYPE_CODE[io.dtype]);
      tensor.message(2, (shape) => {
        for (const d of io.shape) {
          shape.message(1, (dim) => (typeof d === 'number' ? dim.varint(1, d) : dim.string(2, d)));
        }
      });
    }),
  );
}

function writeNode(w: ProtoWriter, n: NodeDef, writeSubgraph: (w: ProtoWriter, g: GraphBuilder) => void): void {
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name);
  w.string(4, n.opType);
  if (n.domain !== '') w.string(7, n.domain);
  for (const [name, value] of Object.entries(n.attrs)) {
    w.message(5, (a) => writeAttr(a, name, value, writeSubgraph));
  }
}

// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_GRAPH = 5;
const ATTR_FLOATS = 6;
const ATTR_INTS = 7;

function writeAttr(a: ProtoWriter, name: string, value: Attr, writeSubgraph: (w: ProtoWriter, g: GraphBuilder) => void): void {
  a.string(1, name);
  if (typeof value === 'string') {
    a.string(4, value).varint(20, ATTR_STRING);
  } else if (typeof value === 'number') {
    if (Number.isInteger(value)) a.varint(3, value).varint(20, ATTR_INT);
    else a.float(2, value).varint(20, ATTR_FLOAT);
  } else if ('kind' in value && value.kind === 'graph') {
    a.message(6, (g) => writeSubgraph(g, value.graph)).varint(20, ATTR_GRAPH);
  } else if ('kind' in value) {
    if (value.kind === 'float') a.float(2, value.value).varint(20, ATTR_FLOAT);
    else a.packedFloats(7, value.value).varint(20, ATTR_FLOATS);
  } else if (value.every(Number.isInteger)) {
    a.packedVarints(8, value).varint(20, ATTR_INTS);
  } else {
    a.packedFloats(7, value).varint(20, ATTR_FLOATS);
  }
}
