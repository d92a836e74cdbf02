/**
 * A consumer of the public entry that uses every export, as an app would. Never run: it is
 * compiled under `--strict` (with `noUnusedLocals`, so an import it stops using is an error)
 * against the source entry by sdk/public-api.test.ts (which also checks that it imports every
 * export of sdk/index.ts), and against the packed tarball's declarations by
 * e2e/consumers/apps.spec.ts.
 */
import {
  BitrateController,
  CODEC_BITRATES_KBPS,
  JitterBuffer,
  LiveSession,
  ModelStore,
  PlayoutBuffer,
  SimulatedLink,
  Whittle,
  WhittleError,
  chooseBackend,
  logSpectralDistance,
  parseWav,
  probeCapabilities,
  quantizersFor,
  softwareAdapterReason,
  validateManifest,
  writeWav,
  type AdapterFacts,
  type AttentionKind,
  type Backend,
  type BackendChoice,
  type BackendPreference,
  type BlobBackend,
  type BlockScores,
  type CacheEntry,
  type CalibrateExitsOptions,
  type Capabilities,
  type ChatMessage,
  type Codec,
  type CodecInfo,
  type ControllerOptions,
  type Decision,
  type Delivery,
  type EncodedFrames,
  type ErrorDetails,
  type ExitChoice,
  type ExitProfile,
  type Feedback,
  type GenerateOptions,
  type GenerateStats,
  type JitterOptions,
  type JitterStats,
  type LinkConfig,
  type LiveOptions,
  type LiveStats,
  type LlamaPlan,
  type LoadOptions,
  type LoadedModel,
  type LsdOptions,
  type ManifestFile,
  type ModelLoadOptions,
  type CodecLoadOptions,
  type RequantMode,
  type ModelManifest,
  type ModelSource,
  type PcmAudio,
  type Playout,
  type PlayoutOptions,
  type PlayoutStart,
  type PlayoutStats,
  type Prompt,
  type PruneCriterion,
  type PruneOptions,
  type PruneResult,
  type WidthPruneOptions,
  type WidthPruneResult,
  type CompressTarget,
  type CompressTargetOptions,
  type CompressTargetResult,
  type TargetCandidate,
  type WidthPlan,
  type RuntimeInfo,
  type RuntimeOptions,
  type SamplingOptions,
  type SpawnWorker,
  type SpeculateOptions,
  type SpeculationStats,
  type DropoutOptions,
  type DropoutStats,
  type StepCost,
  type StoreEvent,
  type StoreOptions,
  type StoreLease,
  type StreamDecoder,
  type StreamEncoder,
  type TextEvent,
  type TextLoadOptions,
  type DecodeKernelChoice,
  type WeightsSetting,
  type SparsitySetting,
  type SparsityPattern,
  type SparsityMethod,
  type TextModel,
  type TextModelInfo,
  type UrlModelSource,
  type FolderManifest,
  type WhittleErrorCode,
  type WhittleOptions,
} from 'whittle';

/** Start-up: probe, choose, open; report what was chosen and why. */
export async function start(preference: BackendPreference = 'auto'): Promise<Whittle> {
  const caps: Capabilities = await probeCapabilities();
  const facts: AdapterFacts = { vendor: caps.webgpu.vendor ?? '', architecture: caps.webgpu.architecture ?? '' };
  const software: string | null = softwareAdapterReason(facts);
  const choice: BackendChoice = chooseBackend(caps, preference, 4);
  const backend: Backend = choice.backend;
  console.log(backend, choice.reason, software);
  const runtime: RuntimeOptions = {};
  const cache: BlobBackend = 'auto';
  const options: WhittleOptions = { backend: preference, cache, runtime, budgetBytes: 1e9 };
  return Whittle.create(options);
}

/** Downloads with progress and cancellation; errors by code. */
export async function download(w: Whittle, manifest: unknown, signal: AbortSignal): Promise<LoadedModel | null> {
  const onProgress = (e: StoreEvent): void => {
    if (e.type === 'progress') console.log(e.overallLoaded / e.overallTotal);
  };
  const load: LoadOptions = { signal, onProgress };
  const valid: ModelManifest = validateManifest(manifest);
  const first: ManifestFile | undefined = valid.files[0];
  console.log(first?.sha256);
  // Pinned against eviction while in use.
  const lease: StoreLease = await w.store.lease(valid);
  try {
    return await w.store.load(valid, load);
  } catch (e) {
    if (!(e instanceof WhittleError)) throw e;
    const code: WhittleErrorCode = e.code;
    const details: ErrorDetails = e.details;
    console.log(code, details);
    return null;
  } finally {
    lease.release();
  }
}

/** A store of one's own, and what it holds. */
export async function ownStore(): Promise<CacheEntry[]> {
  const options: StoreOptions = { backend: 'opfs', name: 'consumer', budgetBytes: 5e8 };
  const store: ModelStore = await ModelStore.open(options);
  return store.list();
}

/** Text: load, generate, plan, prune, speculate, calibrate. */
export async function text(w: Whittle, spawn?: SpawnWorker): Promise<string> {
  const plan: LlamaPlan = { layers: [0, 1, 3, 4] };
  const attention: AttentionKind = 'gqa';
  const q8: WeightsSetting = { linear: 'q8' };
  const pattern: SparsityPattern = '2:4';
  const method: SparsityMethod = 'wanda';
  const sparse: SparsitySetting = { pattern, method };
  console.log(JSON.stringify({ ...q8, sparsity: sparse } satisfies WeightsSetting));
  const decodeKernel: DecodeKernelChoice = 'auto';
  const loadOptions: ModelLoadOptions & TextLoadOptions = { plan, attention, decodeKernel, compress: q8, backend: 'wasm', ...(spawn ? { spawn } : {}) };
  const folder: UrlModelSource = { url: 'https://example.com/models/smol/', integrity: 'none' };
  const published: FolderManifest = { revision: 'r1', files: [{ name: 'config.json', size: 1, sha256: '0'.repeat(64) }] };
  console.log(published.files.length);
  const source: ModelSource = Math.random() > 0.5 ? 'stories260K' : folder;
  const lm: TextModel = await w.text(source, loadOptions);
  const info: TextModelInfo = lm.info;
  const runtime: RuntimeInfo = info.runtime;
  console.log(runtime.numThreads, info.decode.path, info.decode.kernelBytes);
  const sampling: SamplingOptions = { temperature: 0.8, topP: 0.9, seed: 1 };
  const speculate: SpeculateOptions = { exit: 'auto', draft: 'auto' };
  const options: GenerateOptions = { ...sampling, maxTokens: 32, speculate };
  const chat: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  const prompt: Prompt = Math.random() > 0.5 ? 'Once upon a time' : chat;
  let out = '';
  for await (const ev of lm.generate(prompt, options)) {
    const event: TextEvent = ev;
    if (event.type === 'token') out += event.text;
    else {
      const stats: GenerateStats = event.stats;
      const spec: SpeculationStats | undefined = stats.speculation;
      console.log(stats.decodeTokensPerSecond, spec?.acceptance);
    }
  }
  const dropout: DropoutOptions = { context: 'prompt', members: 3, seed: 7 };
  const voted = await lm.complete('Once upon a time', { greedy: true, maxTokens: 8, dropout });
  const dropStats: DropoutStats | undefined = voted.stats.dropout;
  console.log(dropStats?.changedByVote, dropStats?.dropsPerMember);
  const criterion: PruneCriterion = 'perplexity';
  const pruneOptions: PruneOptions = { remove: 1, criterion };
  const pruned: PruneResult = await lm.prune(pruneOptions);
  const widthOptions: WidthPruneOptions = { width: 0.2, method: 'flap' };
  const narrowed: WidthPruneResult = await lm.prune(widthOptions);
  const width: WidthPlan | undefined = narrowed.plan.width;
  console.log(width?.kvHeads.length, narrowed.params.after / narrowed.params.before);
  const target: CompressTarget = { params: 0.8 };
  const targetOptions: CompressTargetOptions = { target, candidates: 2 };
  const reached: CompressTargetResult = await lm.compress(targetOptions);
  const best: TargetCandidate | undefined = reached.candidates[reached.chosen];
  console.log(reached.params.after / reached.params.before, best?.perplexity);
  const scores: BlockScores = pruned.scores;
  const calibrate: CalibrateExitsOptions = { greedy: true };
  const calibrated: { profile: ExitProfile; choice: ExitChoice; stepCost: StepCost } = await lm.calibrateExits(calibrate);
  console.log(scores.fullPerplexity, calibrated.choice.exit, calibrated.profile.layers, calibrated.stepCost.fixed);
  lm.dispose();
  return out;
}

/** Codec: a WAV file round trip, its distance, and a stream with a bitrate switch. */
export async function codecRoundTrip(w: Whittle, wav: ArrayBuffer): Promise<ArrayBuffer> {
  const codec: Codec = await w.codec('lyra-v2');
  const requant: RequantMode = 'exact-f64';
  const exactOptions: CodecLoadOptions = { backend: 'wasm', requant };
  (await w.codec('lyra-v2', exactOptions)).dispose();
  const info: CodecInfo = codec.info;
  console.log(info.runtime.backend, CODEC_BITRATES_KBPS.length, quantizersFor(3.2));
  const audio: PcmAudio = parseWav(wav, { mono: true, sampleRate: 16000 });
  const decoded = await codec.decode(await codec.encode(audio.samples, { kbps: 3.2 }));
  const lsd: LsdOptions = { frameSize: 512, hop: 256 };
  console.log(logSpectralDistance(audio.samples, decoded, lsd));
  const enc: StreamEncoder = codec.encoder({ kbps: 6 });
  const dec: StreamDecoder = codec.decoder();
  const frame: EncodedFrames = await enc.encode(audio.samples.subarray(0, 320));
  enc.setBitrate(3.2);
  const { pcm } = await dec.decode(frame.packets);
  codec.dispose();
  return writeWav(pcm, 16000);
}

/** The live pipeline, whole and in parts. */
export async function live(context: AudioContext, codec: Codec, source: AudioNode): Promise<LiveStats> {
  const link: LinkConfig = { kbps: 8, delayMs: 40, jitterMs: 10, loss: 0.05, burstiness: 0.5, seed: 1 };
  const options: LiveOptions = { link, jitterFrames: 3, kbps: 6, auto: true };
  const session: LiveSession = await LiveSession.create(context, codec, options);
  source.connect(session.input);
  session.output.connect(context.destination);

  const controllerOptions: ControllerOptions = { startKbps: 6 };
  const controller = new BitrateController(controllerOptions);
  const report: Feedback = { now: 250, receivedKbps: 7.2, loss: 0, queueDelayMs: 90 };
  const decision: Decision = controller.update(report);
  const simulated = new SimulatedLink<Uint8Array>(link);
  simulated.send(new Uint8Array([16, 0, 0]), 0);
  const arrived: Delivery<Uint8Array>[] = simulated.receive(100);
  const jitterOptions: JitterOptions = { startFrames: 2, maxFrames: 25 };
  const jitter = new JitterBuffer<Uint8Array>(jitterOptions);
  for (const d of arrived) jitter.push((d.packet[1]! << 8) | d.packet[2]!, d.packet, d.arrivesAt);
  const slots: Playout<Uint8Array>[] = jitter.popDue(100);
  const jitterStats: JitterStats = jitter.stats;
  console.log(decision.kbps, slots[0]?.frame, jitterStats.targetFrames);
  const playoutOptions: PlayoutOptions = { startFrames: 2, maxFrames: 12 };
  const playout = new PlayoutBuffer(playoutOptions);
  playout.push(0, new Float32Array(320));
  const started: PlayoutStart[] = playout.render(new Float32Array(128));
  const counters: PlayoutStats = playout.stats;
  console.log(started.length, counters.targetFrames);
  await session.finished();
  return session.stats;
}
