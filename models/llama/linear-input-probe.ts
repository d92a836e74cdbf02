/**
 * A probe graph variant (probe-plan.ts) for activation-aware quantization: block `layer` alone,
 * as `probeBlockSegment` builds it, that also outputs the inputs of its four linear layers:
 *
 *   hidden_in [1, S, dim] -> block -> hidden_out   [1, S, dim]
 *                                     in.qkv.L     [1, S, dim]          RMSNorm(h) * attnNorm
 *                                     in.wo.L      [1, S, nHeads * hs]  attention output
 *                                     in.gate_up.L [1, S, dim]          RMSNorm(h') * ffnNorm
 *                                     in.down.L    [1, S, hidden]       silu(gate) * up
 *
 * Built by adding graph outputs to the block graph that graph.ts emits, not by a second copy of
 * the block: the values are exactly what the compiled model multiplies by, whatever its
 * attention kind. graph.ts names each linear's weight initializer `qkv.L`, `wo.L`, `gate_up.L`,
 * `down.L` (emitLinear's `name`); the linear's node is the one taking that initializer, and its
 * first input is the activation wanted. A missing or unexpected node is an INTERNAL error, so a
 * change to graph.ts's naming fails loudly here rather than measuring the wrong value.
 *
 * The patch is a minimal protobuf pass (fields copied byte for byte; GraphProto.output (12)
 * entries appended), like export/inline-weights.ts.
 *
 * @example
 * const probe = linearInputProbe(prepared, 3, 'onnx');
 * const session = await createSession(ort, probe.built, 'wasm');
 * // session.run(feeds, ['hidden_out', ...probe.outputs.map((o) => o.name)])
 */
import { WhittleError } from '../../core/errors.ts';
import type { BuiltModel } from '../onnx/builder.ts';
import { ProtoWriter } from '../onnx/protobuf.ts';
import { buildSegment, type AttentionKind } from './graph.ts';
import { layerWidth, type PreparedWeights } from './prepare.ts';
import { probeBlockSegment } from './probe-plan.ts';

/** The four linears of a block, by the name graph.ts gives their weights. */
export const BLOCK_LINEARS = ['qkv', 'wo', 'gate_up', 'down'] as const;
export type BlockLinear = (typeof BLOCK_LINEARS)[number];

export interface LinearInputOutput {
  linear: BlockLinear;
  /** Graph output name: `in.<linear>.<layer>`. */
  name: string;
  /** Input features of the linear (the output's last dimension). */
  K: number;
}

export interface LinearInputProbe {
  built: BuiltModel;
  outputs: LinearInputOutput[];
}

/** Block `layer` as a probe graph that also outputs its four linear inputs (see the header). */
export function linearInputProbe(w: PreparedWeights, layer: number, attention: AttentionKind): LinearInputProbe {
  const c = w.config;
  const graph = buildSegment(w, probeBlockSegment(layer, c.nLayers), attention);
  const width = layerWidth(c, w.layers[layer]!);
  const K: Record<BlockLinear, number> = { qkv: c.dim, wo: width.nHeads * w.headSize, gate_up: c.dim, down: width.hidden };
  const model = graph.built.model;
  const top = fields(model);
  const graphField = top.find((f) => f.field === 7);
  if (!graphField) throw new WhittleError('INTERNAL', 'probe graph has no GraphProto');
  const graphBytes = model.subarray(graphField.payloadStart, graphField.end);
  // Weight initializer name -> first input of the node that multiplies by it.
  const inputOf = new Map<string, string>();
  for (const f of fields(graphBytes)) {
    if (f.field !== 1) continue;
    const node = graphBytes.subarray(f.payloadStart, f.end);
    const nf = fields(node);
    const op = nf.find((x) => x.field === 4);
    const opType = op ? text.decode(node.subarray(op.payloadStart, op.end)) : '';
    if (!['MatMul', 'DynamicQuantizeMatMul', 'MatMulNBits'].includes(opType)) continue;
    const inputs = nf.filter((x) => x.field === 1).map((x) => text.decode(node.subarray(x.payloadStart, x.end)));
    if (inputs.length >= 2) inputOf.set(inputs[1]!, inputs[0]!);
  }
  const outputs: LinearInputOutput[] = [];
  const extra = new ProtoWriter();
  for (const linear of BLOCK_LINEARS) {
    const activation = inputOf.get(`${linear}.${layer}`);
    if (activation === undefined) throw new WhittleError('INTERNAL', `probe graph of block ${layer}: no linear node reads the weight '${linear}.${layer}'`);
    const name = `in.${linear}.${layer}`;
    // An Identity names the value for the caller (the producing node's own output name is
    // graph.ts's business); onnxruntime keeps it, being a graph output.
    outputs.push({ linear, name, K: K[linear] });
    extra.message(1, (n) => n.string(1, activation).string(2, name).string(3, `probe_${name}`).string(4, 'Identity'));
    extra.message(12, (vi) =>
      vi.string(1, name).message(2, (type) =>
        type.message(1, (tensor) =>
          tensor.varint(1, 1 /* float32 */).message(2, (shape) => {
            shape.message(1, (d) => d.varint(1, 1));
            shape.message(1, (d) => d.string(2, 'S'));
            shape.message(1, (d) => d.varint(1, K[linear]));
          }),
        ),
      ),
    );
  }
  const patchedGraph = concat([graphBytes, extra.finish()]);
  const parts: Uint8Array[] = [];
  for (const f of top) {
    if (f.field === 7) parts.push(Uint8Array.from([...varint(7 * 8 + 2), ...varint(patchedGraph.length)]), patchedGraph);
    else parts.push(model.subarray(f.start, f.end));
  }
  return { built: { model: concat(parts), externalData: graph.built.externalData }, outputs };
}

const text = new TextDecoder();

interface Field {
  field: number;
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

/** The top-level fields of one message (nested messages stay as byte ranges). */
function fields(buf: Uint8Array): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [tag, p1] = readVarint(buf, pos);
    pos = p1;
    const wire = tag & 7;
    let payloadStart = pos;
    if (wire === 0) pos = readVarint(buf, pos)[1];
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [len, p2] = readVarint(buf, pos);
      payloadStart = p2;
      pos = p2 + len;
    } else throw new WhittleError('INTERNAL', `unsupported protobuf wire type ${wire}`);
    out.push({ field: Math.floor(tag / 8), start, end: pos, payloadStart });
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

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
