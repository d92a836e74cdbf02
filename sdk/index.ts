/**
 * Whittle's public API. Everything a user imports comes from here, and every type a public
 * signature uses is exported here too (sdk/public-api.test.ts checks both, and that each export
 * has an `@example`). The zero-block `HeadModel` is internal (`Whittle.headModel` is for tests).
 *
 * @example
 * import { Whittle, WhittleError } from 'whittle';
 * const w = await Whittle.create();
 */
export { Whittle, type WhittleOptions, type ModelLoadOptions, type CodecLoadOptions, type RuntimeOptions, type ModelSource } from './whittle.ts';
export type { UrlModelSource } from './store/url-folder.ts';
export type { FolderManifest } from './store/folder-manifest.ts';
export type { WeightsSetting } from '../models/llama/types.ts';
export type { SparsitySetting, SparsityPattern, SparsityMethod } from '../models/compress/sparsity-select.ts';
export { TextModel, type TextEvent, type GenerateOptions, type TextModelInfo, type LlamaPlan, type WidthPlan, type TextLoadOptions, type DecodeKernelChoice, type PruneOptions, type PruneResult, type WidthPruneOptions, type WidthPruneResult, type CompressTarget, type CompressTargetOptions, type CompressTargetResult, type TargetCandidate, type CalibrateExitsOptions, type ExitChoice, type ExitProfile, type SpeculateOptions, type SpeculationStats, type DropoutOptions, type DropoutStats, type Prompt, type ChatMessage } from './text-model.ts';
export type { PruneCriterion, BlockScores } from '../models/llama/scoring.ts';
// Types the text model's signatures use, declared where the engine defines them.
export type { AttentionKind } from '../models/llama/graph.ts';
export type { GenerateStats } from '../core/text-types.ts';
export type { SamplingOptions } from '../workers/text/sampler.ts';
export type { StepCost } from '../workers/text/exit-calibration.ts';
export type { RuntimeInfo, Backend } from '../workers/ort/runtime.ts';
export type { RequantMode } from '../models/import/tflite/requant.ts';
export type { SpawnWorker } from './client/worker-client.ts';
export { WhittleError, type WhittleErrorCode, type ErrorDetails } from '../core/errors.ts';
export { probeCapabilities, chooseBackend, softwareAdapterReason, type Capabilities, type AdapterFacts, type BackendChoice, type BackendPreference } from './probe.ts';
export { ModelStore, type StoreOptions, type LoadOptions, type LoadedModel, type StoreLease } from './store/store.ts';
export type { StoreEvent } from './store/events.ts';
export { validateManifest, type ModelManifest, type ManifestFile } from './store/manifest.ts';
export type { CacheEntry } from './store/meta.ts';
export type { BlobBackend } from './store/blobs.ts';
export { Codec, CODEC_BITRATES_KBPS, quantizersFor, type StreamEncoder, type StreamDecoder, type CodecInfo, type EncodedFrames } from './codec.ts';
// The live codec pipeline and its parts (each usable alone: the controller and the link are pure).
export { LiveSession, type LiveOptions, type LiveStats } from './live/session.ts';
export { BitrateController, type ControllerOptions, type Decision, type Feedback } from './live/controller.ts';
export { JitterBuffer, type Playout, type JitterOptions, type JitterStats } from './live/jitter-buffer.ts';
export { PlayoutBuffer, type PlayoutOptions, type PlayoutStats, type PlayoutStart } from './live/playout.ts';
export { SimulatedLink, type LinkConfig, type Delivery } from './live/network.ts';
// Audio helpers for codec apps: WAV in and out, and the distance the codec's tests measure.
export { parseWav, writeWav, type PcmAudio } from '../core/wav.ts';
export { logSpectralDistance, type LsdOptions } from '../core/audio-metrics.ts';
