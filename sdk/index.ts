/**
 * Whittle's public API. Everything a user imports comes from here.
 *
 * @example
 * import { Whittle, WhittleError } from 'whittle';
 * const w = await Whittle.create();
 */
export { Whittle, type WhittleOptions, type ModelLoadOptions } from './whittle.ts';
export { HeadModel } from './head-model.ts';
export { TextModel, type TextEvent, type GenerateOptions, type TextModelInfo, type LlamaPlan, type TextLoadOptions, type PruneOptions, type PruneResult, type CalibrateExitsOptions, type ExitChoice, type ExitProfile, type SpeculateOptions, type SpeculationStats, type Prompt, type ChatMessage } from './text-model.ts';
export type { PruneCriterion } from '../models/llama/scoring.ts';
export { WhittleError, type WhittleErrorCode, type ErrorDetails } from '../core/errors.ts';
export { probeCapabilities, chooseBackend, type Capabilities, type BackendChoice, type BackendPreference } from './probe.ts';
export { ModelStore, type StoreOptions, type LoadOptions, type LoadedModel } from './store/store.ts';
export type { StoreEvent } from './store/events.ts';
export { validateManifest, type ModelManifest, type ManifestFile } from './store/manifest.ts';
export type { CacheEntry } from './store/meta.ts';
export type { BlobBackend } from './store/blobs.ts';
export { Codec, CODEC_BITRATES_KBPS, quantizersFor, type StreamEncoder, type StreamDecoder, type CodecInfo } from './codec.ts';
