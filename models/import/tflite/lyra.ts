/**
 * Lyra v2 (SoundStream) -> ONNX: the encoder, the quantizer's `encode`/`decode` signatures
 * and the decoder (lyragan), plus the RVQ codebooks for running the quantizer as pure
 * functions over typed arrays.
 *
 * @example
 * const lyra = importLyra({ encoder, quantizer, decoder }); // ArrayBuffers of the .tflite files
 * const session = await createSession(ort, lyra.encoder.built, 'wasm');
 */
import { WhittleError } from '../../../core/errors.ts';
import { convertSubgraph, type ConvertedGraph } from './convert.ts';
import type { FloatConvOrder } from './float-order.ts';
import type { RequantMode } from './requant.ts';
import { readTflite, type TfModel } from './schema.ts';
import { f32 } from './context.ts';

export interface LyraModelBytes {
  /** soundstream_encoder.tflite */
  encoder: ArrayBuffer | Uint8Array;
  /** quantizer.tflite (signatures `encode` and `decode`) */
  quantizer: ArrayBuffer | Uint8Array;
  /** lyragan.tflite */
  decoder: ArrayBuffer | Uint8Array;
}

/** Residual VQ codebooks: `data` is [stages, entries, dims] row-major. */
export interface Codebooks {
  stages: number;
  entries: number;
  dims: number;
  data: Float32Array;
}

export interface LyraGraphs {
  /** input_audio [1,320] f32 -> output_0 [1,1,64], plus conv-history state. */
  encoder: ConvertedGraph;
  /** input_frames [1,1,64] f32 + num_quantizers [] i32 -> output_0 codes [46,1,1] i32, output_1 bits per quantizer [] i32 (null unless asked for). */
  quantizerEncode: ConvertedGraph | null;
  /** encoding_indices [46,1,1] i32 -> output_0 [1,1,64] f32 (null unless asked for). */
  quantizerDecode: ConvertedGraph | null;
  /** input_audio [1,1,64] f32 -> output_0 [1,320], plus state. */
  decoder: ConvertedGraph;
  codebooks: Codebooks;
}

function signatureGraph(model: TfModel, key: string | null, requant: RequantMode, floatConvOrder: FloatConvOrder = 'fast'): ConvertedGraph {
  const sig = key === null ? model.signatures[0] : model.signatures.find((s) => s.key === key);
  if (key !== null && !sig) throw new WhittleError('BAD_MODEL', `${model.name}: no signature '${key}'`, { model: model.name });
  return convertSubgraph(model, sig?.subgraph ?? 0, sig, [], requant, floatConvOrder);
}

/** The codebook of each SQUARED_DIFFERENCE stage of the quantizer's `encode` subgraph, in order. */
export function extractCodebooks(model: TfModel): Codebooks {
  const sig = model.signatures.find((s) => s.key === 'encode');
  const sg = sig ? model.subgraphs[sig.subgraph] : undefined;
  if (!sg) throw new WhittleError('BAD_MODEL', `${model.name}: no 'encode' signature`, { model: model.name });
  const books: Float32Array[] = [];
  let entries = 0;
  let dims = 0;
  for (const op of sg.operators) {
    if (op.code !== 99) continue; // SQUARED_DIFFERENCE(residual [1,1,D], codebook [1,K,D])
    const t = sg.tensors[op.inputs[1]!];
    if (!t?.data || t.shape.length !== 3)
      throw new WhittleError('BAD_MODEL', `${model.name}: unexpected RVQ stage layout`, { model: model.name });
    [, entries, dims] = t.shape as [number, number, number];
    books.push(f32(t.data));
  }
  const data = new Float32Array(books.length * entries * dims);
  books.forEach((b, s) => data.set(b, s * entries * dims));
  return { stages: books.length, entries, dims, data };
}

export interface ImportLyraOptions {
  /** int8 requantization emulation (see requant.ts); default 'exact-f64' (use 'exact-f32' for WebGPU). */
  requant?: RequantMode;
  /**
   * How the encoder's float convs sum (float-order.ts). Default: 'tflite' with 'exact-f64' (the
   * codes then match TFLite's on every frame of the test sets), else 'fast'. The decoder always
   * uses 'fast': its output is audio, within ~1e-5 of TFLite's either way.
   */
  encoderFloatConvOrder?: FloatConvOrder;
  /** Also convert the quantizer's `encode`/`decode` graphs (default true); the codebooks are always exported. */
  quantizerGraphs?: boolean;
}

/** Imports the three Lyra v2 models; an unsupported op or a broken file throws a typed WhittleError. */
export function importLyra(bytes: LyraModelBytes, options: ImportLyraOptions = {}): LyraGraphs {
  const requant = options.requant ?? 'exact-f64';
  const withQuantizer = options.quantizerGraphs ?? true;
  const enc = readTflite(bytes.encoder, 'soundstream_encoder.tflite');
  const q = readTflite(bytes.quantizer, 'quantizer.tflite');
  const dec = readTflite(bytes.decoder, 'lyragan.tflite');
  return {
    encoder: signatureGraph(enc, null, requant, options.encoderFloatConvOrder ?? (requant === 'exact-f64' ? 'tflite' : 'fast')),
    quantizerEncode: withQuantizer ? signatureGraph(q, 'encode', requant) : null,
    quantizerDecode: withQuantizer ? signatureGraph(q, 'decode', requant) : null,
    decoder: signatureGraph(dec, null, requant),
    codebooks: extractCodebooks(q),
  };
}
