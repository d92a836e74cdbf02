/**
 * What the Lyra v2 codec model is: its registry id, the files the engine needs (keys are the
 * `LyraModelBytes` fields of models/import/tflite/lyra.ts) and its fixed shapes. The SDK or a
 * worker fetches `files` from the store and hands the bytes to `LyraCodecEngine.create`.
 */
export const LYRA_V2 = {
  /** Registry id (models/registry.json). */
  id: 'lyra-v2',
  files: {
    encoder: 'soundstream_encoder.tflite',
    quantizer: 'quantizer.tflite',
    decoder: 'lyragan.tflite',
  },
  sampleRate: 16000,
  /** Samples per 20 ms frame (one encoder call, one decoder call). */
  frameSamples: 320,
  /** Encoder output / decoder input features per frame. */
  featureDims: 64,
  /** Residual VQ stages, each with 16 entries (4 bits). */
  stages: 46,
  entriesPerStage: 16,
  bitsPerQuantizer: 4,
  /** Lyra's published rates; every 0.2 kbps step from 0.2 to 9.2 works (models/codec/bitrates.ts). */
  referenceKbps: [3.2, 6, 9.2],
} as const;

export type LyraFileKey = keyof typeof LYRA_V2.files;
