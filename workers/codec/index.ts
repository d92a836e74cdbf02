/**
 * The codec engine's surface, for a worker entry (`codec.worker.ts`), the SDK's types and Node
 * tools. Nothing here imports onnxruntime-web directly (that is workers/ort/runtime.ts), the DOM or Node.
 *
 * @example
 * import { loadOrt } from '../ort/runtime.ts';
 * import { LyraCodecEngine } from './index.ts';
 * const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
 * const codec = await LyraCodecEngine.create(ort, 'wasm', { encoder, quantizer, decoder }); // ArrayBuffers
 */
export { LyraCodecEngine, type CodecEngineOptions } from './engine.ts';
export {
  BITRATES,
  BITS_PER_QUANTIZER,
  FRAME_SAMPLES,
  FRAMES_PER_SECOND,
  MAX_QUANTIZERS,
  REFERENCE_QUANTIZERS,
  SAMPLE_RATE,
  checkQuantizers,
  quantizersForKbps,
  type Bitrate,
} from '../../models/codec/bitrates.ts';
export { HEADER_BYTES, packCodes, packPacket, payloadBytes, unpackCodes, unpackPacket, unpackStream, type CodecPacket } from './packet.ts';
export { parseWav, writeWav, type PcmAudio } from '../../core/wav.ts';
export { resample } from './resample.ts';
export { logSpectralDistance, powerSpectrum, rms } from '../../core/audio-metrics.ts';
export { rvqDecode, rvqEncode, type Codebooks } from './rvq.ts';
export { Framer } from './framer.ts';
export { LYRA_V2 } from '../../models/codec/lyra-v2.ts';
export type { LyraModelBytes } from '../../models/import/tflite/lyra.ts';
export type { RequantMode } from '../../models/import/tflite/requant.ts';
