/**
 * The text engine's surface, for a worker entry (`text.worker.ts`) and for Node tools.
 * Nothing here imports onnxruntime-web directly (that is workers/ort/runtime.ts), the DOM or Node.
 *
 * @example
 * import { loadOrt } from '../ort/runtime.ts';
 * import { TextEngine, textModelFromLlama2c } from './index.ts';
 * const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });
 * const engine = await TextEngine.create(ort, 'wasm', textModelFromLlama2c(binBytes, tokBytes));
 */
export { TextEngine, type TextEngineOptions, type PerplexityOptions } from './engine.ts';
export type { GenerateOptions, GenerateStats, TextEvent, Prompt, SpeculateOptions, SpeculationStats } from '../../core/text-types.ts';
export { TextStreamer } from './streamer.ts';
export { textModelFromHf, textModelFromLlama2c, type TextModel } from './model.ts';
export { TextTokenizer } from './tokenizer.ts';
export type { SamplingOptions } from './sampler.ts';
export type { LlamaConfig, LlamaPlan } from '../../models/llama/types.ts';
export type { AttentionKind } from '../../models/llama/graph.ts';
