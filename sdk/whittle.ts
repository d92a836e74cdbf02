/**
 * The entry point: probes the browser, opens the model store, and starts models in workers.
 *
 * @example
 * const w = await Whittle.create({ backend: 'auto' });
 * const lm = await w.text('stories260K', { onProgress: console.log });
 * const { text } = await lm.complete('Once upon a time', { maxTokens: 32 });
 */
import { WhittleError } from '../core/errors.ts';
import { chooseBackend, probeCapabilities, type BackendChoice, type BackendPreference, type Capabilities } from './probe.ts';
import { spawnCodecWorker, spawnHeadWorker, spawnTextWorker } from './client/spawn.ts';
import { Codec } from './codec.ts';
import { LYRA_V2 } from '../models/codec/lyra-v2.ts';
import type { RequantMode } from '../models/import/tflite/requant.ts';
import { TextModel, type LlamaPlan, type SavePlan, type TextLoadOptions } from './text-model.ts';
import type { SpawnWorker } from './client/worker-client.ts';
import { wasmAfterDeviceLoss } from './client/device-fallback.ts';
import type { RuntimeConfig } from '../workers/ort/runtime.ts';
import { HeadModel } from './head-model.ts';
import type { BlobBackend } from './store/blobs.ts';
import { validateManifest, type ModelManifest } from './store/manifest.ts';
import { holdWhileAlive } from './store/lease.ts';
import { ModelStore, type LoadedModel, type LoadOptions, type StoreLease } from './store/store.ts';
import { textSourceOf } from './text-source.ts';
import { discardVariant, isVariantFolder, openStoredVariant, openStoredWidthVariant, saveStreamedVariant, saveVariant, saveWidthVariant, variantIsBad, variantKey, widthTag, widthVariantKey, type StreamedSave } from './text-variant.ts';
import { isModelUrl, resolveUrlFolder, type UrlModelSource } from './store/url-folder.ts';

/**
 * What `w.text()` loads: a registry id (`'stories260K'`), a Hugging Face-style folder by URL
 * (`'https://host/models/smol/'`, `'/models/smol/'`, or `{ url, sha256?, integrity?, files?, revision? }`),
 * or a manifest.
 *
 * @example
 * await w.text('stories-layerskip');
 * await w.text('https://host/models/smol/');                      // verified by the folder's whittle.json
 * await w.text({ url: './models/smol/', integrity: 'none' });     // no hashes published: sizes only, said explicitly
 */
export type ModelSource = string | UrlModelSource | ModelManifest;

/**
 * Options of `Whittle.create()`: backend, cache, budget, threads, network.
 *
 * @example
 * const w = await Whittle.create({ backend: 'auto', cache: 'opfs', budgetBytes: 1e9, maxThreads: 4 } satisfies WhittleOptions);
 */
export interface WhittleOptions {
  /** 'auto' picks WebGPU on a hardware adapter, else WASM (a software adapter such as SwiftShader counts as none). */
  backend?: BackendPreference;
  /** Blob storage: OPFS, Cache Storage, or 'auto' (OPFS with Cache Storage fallback). */
  cache?: BlobBackend;
  /** Upper bound on cached bytes; least recently used models are evicted beyond it. */
  budgetBytes?: number;
  /** Where the model manifests are served (written by `npm run models`). */
  manifestsUrl?: string;
  /**
   * Where onnxruntime-web's runtime files come from. By default the package's own copies,
   * which your bundler emits next to the worker (same origin, nothing to configure). Give
   * `wasmPaths` to serve them elsewhere: a URL prefix ending in `/` that holds
   * `ort-wasm-simd-threaded{,.asyncify}.{mjs,wasm}`, or the two files of the backend in use.
   */
  runtime?: RuntimeOptions;
  /** Storage namespace. */
  storeName?: string;
  /** Most WASM threads to use when cross-origin isolated. */
  maxThreads?: number;
  /** Injected for custom CDNs/auth; used for manifests and model files. */
  fetch?: typeof fetch;
  /** Storage estimate override (embedding apps with their own accounting; tests). */
  estimate?: () => Promise<StorageEstimate>;
  /**
   * What a model does after its WebGPU device is lost (calls in flight reject with
   * `DEVICE_LOST` either way): `'recreate'` (default) starts its next worker on a fresh GPU
   * device; `'wasm'` starts it, and every one after, on WASM.
   */
  deviceLoss?: 'recreate' | 'wasm';
}

/**
 * Where onnxruntime-web's runtime files are served; see `WhittleOptions.runtime`.
 *
 * @example
 * const w = await Whittle.create({ runtime: { wasmPaths: 'https://cdn.example.com/ort/1.30.0/' } });
 */
export interface RuntimeOptions {
  wasmPaths?: string | { mjs: string; wasm: string };
}

/** Workers resolve URLs against their own location, so relative paths are fixed to the page's here. */
function absoluteWasmPaths(paths: string | { mjs: string; wasm: string }): string | { mjs: string; wasm: string } {
  const abs = (u: string) => new URL(u, location.href).href;
  return typeof paths === 'string' ? abs(paths) : { mjs: abs(paths.mjs), wasm: abs(paths.wasm) };
}

/**
 * Options of every model load: cancellation, progress, and a backend for this model only.
 *
 * @example
 * const codec = await w.codec('lyra-v2', { backend: 'wasm', signal, onProgress } satisfies ModelLoadOptions);
 */
export interface ModelLoadOptions extends LoadOptions {
  /** Override the backend for this model. */
  backend?: BackendPreference;
  /** Override the worker factory (bundlers without `new URL(..., import.meta.url)` support; tests). */
  spawn?: SpawnWorker;
}

/**
 * Codec loading options.
 *
 * @example
 * const exact = await w.codec('lyra-v2', { backend: 'wasm', requant: 'exact-f64' }); // TFLite's codes bit for bit
 */
export interface CodecLoadOptions extends ModelLoadOptions {
  /**
   * How the int8 layers run. Default: 'float' on wasm (fastest; first code equal to TFLite's on
   * 94-99% of frames, same quality), 'exact-f32' on webgpu. 'exact-f64' (wasm only) gives
   * TFLite's codes bit for bit; 'exact-f32' has TFLite's int8 arithmetic but float layers that
   * round differently in the last bits (codes diverge in bursts on some clips); 'approx' is
   * one int8 level off on a few outputs per thousand.
   */
  requant?: RequantMode;
}

/**
 * Whittle in a page: the capability probe and backend choice, the model store, and models
 * started in workers (`text`, `codec`).
 *
 * @example
 * const w = await Whittle.create({ backend: 'auto' });
 * console.log(w.choice.backend, w.choice.reason); // e.g. 'wasm', "the WebGPU adapter is SwiftShader (…)…"
 * const lm = await w.text('stories260K');
 * const codec = await w.codec('lyra-v2');
 */
export class Whittle {
  private manifests: Promise<Map<string, ModelManifest>> | null = null;

  private constructor(
    readonly capabilities: Capabilities,
    readonly choice: BackendChoice,
    readonly store: ModelStore,
    private readonly options: WhittleOptions,
  ) {}

  static async create(options: WhittleOptions = {}): Promise<Whittle> {
    const capabilities = await probeCapabilities();
    const choice = chooseBackend(capabilities, options.backend ?? 'auto', options.maxThreads);
    const store = await ModelStore.open({
      backend: options.cache ?? 'auto',
      ...(options.budgetBytes !== undefined ? { budgetBytes: options.budgetBytes } : {}),
      ...(options.storeName ? { name: options.storeName } : {}),
      ...(options.fetch ? { fetch: options.fetch } : {}),
      ...(options.estimate ? { estimate: options.estimate } : {}),
    });
    return new Whittle(capabilities, choice, store, options);
  }

  /** The manifest for a model id, from the served manifests file. */
  async manifest(id: string): Promise<ModelManifest> {
    this.manifests ??= this.fetchManifests();
    const found = (await this.manifests).get(id);
    if (!found) {
      throw new WhittleError('INVALID_ARGUMENT', `unknown model '${id}': not a registry id; a folder URL starts with http(s)://, /, ./ or ../, or ends with /`, { id });
    }
    return found;
  }

  private async fetchManifests(): Promise<Map<string, ModelManifest>> {
    const url = this.options.manifestsUrl ?? '/models/manifests.json';
    const doFetch = this.options.fetch ?? fetch;
    let body: unknown;
    try {
      const res = await doFetch(url);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      body = await res.json();
    } catch (err) {
      this.manifests = null;
      throw new WhittleError('NETWORK', `could not load model manifests from ${url}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const models = (body as { models?: unknown[] }).models;
    if (!Array.isArray(models)) throw new WhittleError('BAD_MODEL', `${url} has no models array`);
    return new Map(models.map((m) => validateManifest(m)).map((m) => [m.id, m]));
  }

  /**
   * A model id (looked up in the served manifests), a folder URL (relative ones resolve against
   * the page; a cached folder resolves with no request) or a manifest given directly (validated).
   */
  private async resolve(model: ModelSource, signal?: AbortSignal): Promise<ModelManifest> {
    if (typeof model === 'string' && !isModelUrl(model)) return this.manifest(model);
    if (typeof model === 'string' || 'url' in model) {
      return resolveUrlFolder(model, {
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
        ...(signal ? { signal } : {}),
        base: location.href,
        cached: (id, revision) => this.store.entry(id, revision),
      });
    }
    return validateManifest(model);
  }

  private runtimeFor(preference?: BackendPreference): RuntimeConfig {
    const choice = preference ? chooseBackend(this.capabilities, preference, this.options.maxThreads) : this.choice;
    return {
      backend: choice.backend,
      numThreads: choice.numThreads,
      ...(this.options.runtime?.wasmPaths ? { wasmPaths: absoluteWasmPaths(this.options.runtime.wasmPaths) } : {}),
    };
  }

  /**
   * A model's worker factory and runtime config; with `deviceLoss: 'wasm'` the factory switches
   * that config to WASM when one of its workers loses its WebGPU device (client/device-fallback.ts).
   */
  private workerSetup(spawn: SpawnWorker, preference?: BackendPreference): [SpawnWorker, RuntimeConfig] {
    const runtime = this.runtimeFor(preference);
    return [this.options.deviceLoss === 'wasm' && runtime.backend === 'webgpu' ? wasmAfterDeviceLoss(spawn, runtime) : spawn, runtime];
  }

  /**
   * @internal Loads a llama2.c model's zero-block plan (embedding -> norm -> head) into a
   * worker: the smallest real model path, kept for the project's own tests; not public API.
   * `model` is an id from the manifests file, or a manifest; `file` defaults to the first `.bin`.
   */
  async headModel(model: string | ModelManifest, opts: ModelLoadOptions & { file?: string } = {}): Promise<HeadModel> {
    const manifest = await this.resolve(model);
    // Pinned until the handle is disposed: its worker re-reads these files when it respawns.
    const lease = await this.store.lease(manifest);
    try {
      const loaded = await this.store.load(manifest, opts);
      const fileName = opts.file ?? manifest.files.find((f) => f.name.endsWith('.bin'))?.name;
      const blob = fileName ? loaded.files.get(fileName) : undefined;
      if (!blob || !fileName) throw new WhittleError('BAD_MODEL', `${manifest.id} has no llama2.c checkpoint file`);
      return holdWhileAlive(await HeadModel.start(...this.workerSetup(opts.spawn ?? spawnHeadWorker, opts.backend), blob, fileName, loaded.source), lease);
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /**
   * Loads a language model into a worker: llama2.c (`.bin` + `tok*.bin`) or Hugging Face
   * (`config.json`, `*.safetensors` or sharded with `model.safetensors.index.json`, `tokenizer.json`)
   * files, by id, folder URL or manifest (see {@link ModelSource}).
   */
  async text(model: ModelSource, opts: ModelLoadOptions & TextLoadOptions = {}): Promise<TextModel> {
    const manifest = await this.resolve(model, opts.signal);
    const { compress } = opts;
    // The plan a saved one restores when the caller gives none (startText reads it again).
    const savedPlan = opts.plan ? undefined : ((await this.store.entry(manifest.id, manifest.revision))?.extra?.plan as LlamaPlan | undefined);
    // A width plan compresses its own narrowed blocks: its variant is keyed by the plan too.
    const plan = opts.plan ?? savedPlan;
    const widthPlan = plan?.width ? plan : undefined;
    // [variant] A variant an earlier load with this setting (and width plan) saved: no source weights
    // read, no quantization (sdk/text-variant.ts). One that fails verification is dropped, then the source loads.
    const stored = compress ? await openStoredVariant(this.store, manifest, compress, opts, widthPlan) : null;
    if (stored) {
      try {
        const lm = await this.startText(stored.loaded, stored.lease, manifest, opts, false);
        lm.variant = stored.manifest.id;
        return lm;
      } catch (err) {
        if (!variantIsBad(err)) throw err;
        await discardVariant(this.store, manifest, variantKey(manifest, compress!, widthPlan), (err as Error).message, opts.onProgress);
      }
    }
    // [variant] The saved plan (restored when the caller gives none) is a width plan saved with
    // its narrowed blocks: load those (no slicing, no calibration); a bad one is dropped, then the source loads.
    const narrow = savedPlan?.width && !compress ? await openStoredWidthVariant(this.store, manifest, savedPlan, opts) : null;
    if (narrow) {
      try {
        const lm = await this.startText(narrow.loaded, narrow.lease, manifest, opts, false);
        lm.variant = narrow.manifest.id;
        return lm;
      } catch (err) {
        if (!variantIsBad(err)) throw err;
        await discardVariant(this.store, manifest, widthVariantKey(manifest, savedPlan!), (err as Error).message, opts.onProgress);
      }
    }
    // Pinned until the handle is disposed: its worker re-reads these files when it respawns.
    const lease = await this.store.lease(manifest);
    let loaded: LoadedModel;
    try {
      loaded = await this.store.load(manifest, opts);
    } catch (err) {
      lease.release();
      throw err;
    }
    // [variant] A compressed load of a source: the variant is compressed into the store a block
    // at a time by a worker of its own, then loaded from there like any later load, so this first
    // load holds no more than a cached one (saveStreamedVariant). A setting that needs the whole
    // model (sparsity, AWQ, a width plan's narrowed blocks), or a save that fails, takes the old
    // way: the worker keeps its packed weights to save them as a variant after loading.
    let makeVariant = compress !== undefined && !isVariantFolder(loaded.files.keys());
    let streamed: StreamedSave = 'whole-model';
    try {
      if (makeVariant && !widthPlan) streamed = await saveStreamedVariant(this.store, opts.spawn ?? spawnTextWorker, this.runtimeFor(opts.backend).backend, manifest, loaded, compress!, opts);
    } catch (err) {
      lease.release(); // aborted
      throw err;
    }
    // Saved then refused as bad, or not saved (QUOTA...): load the source; saving again now would fail the same way.
    if (streamed !== 'whole-model') makeVariant = false;
    if (typeof streamed === 'object') {
      const saved = streamed.opened;
      if (saved) {
        try {
          // `source` says where this load's bytes came from: the source's download (or cache), not the variant just written.
          const lm = await this.startText({ ...saved.loaded, source: loaded.source }, saved.lease, manifest, opts, false);
          lm.variant = saved.manifest.id;
          lease.release(); // the variant's own lease pins what the model re-reads
          return lm;
        } catch (err) {
          if (!variantIsBad(err)) {
            lease.release();
            throw err;
          }
          await discardVariant(this.store, manifest, variantKey(manifest, compress!), (err as Error).message, opts.onProgress).catch(() => undefined);
        }
      }
    }
    const lm = await this.startText(loaded, lease, manifest, opts, makeVariant);
    if (isVariantFolder(loaded.files.keys())) lm.variant = manifest.id;
    if (makeVariant) await saveVariant(this.store, lm, manifest, loaded, compress!, opts, widthPlan);
    return lm;
  }

  /** Starts a text worker on `loaded`'s files (llama2.c, HF or a variant folder); releases `lease` if that fails, else when the handle is disposed. */
  private async startText(loaded: LoadedModel, lease: StoreLease, manifest: ModelManifest, opts: ModelLoadOptions & TextLoadOptions, keepVariant: boolean): Promise<TextModel> {
    try {
      const isVariant = isVariantFolder(loaded.files.keys());
      const files = textSourceOf(loaded, manifest.id);
      const { attention, compress, decodeKernel } = opts;
      // A plan saved with the cached model (savePlan) is restored unless the caller gives one.
      const saved = (await this.store.entry(manifest.id, manifest.revision))?.extra?.plan as TextLoadOptions['plan'];
      const plan = opts.plan ?? saved;
      // The handle's savePlan() writes through this store, to this manifest's cache entry.
      const savePlan: SavePlan = async (p, exportWidth) => {
        await this.savePlan(manifest, p);
        // [variant] A width plan's narrowed blocks, from a source load (never fails the save).
        if (p?.width && exportWidth && !isVariant) await saveWidthVariant(this.store, exportWidth, manifest, loaded, p, opts);
      };
      const options = { ...(plan ? { plan } : {}), ...(attention ? { attention } : {}), ...(decodeKernel ? { decodeKernel } : {}), ...(compress ? { compress } : {}), ...(keepVariant ? { keepVariant } : {}) };
      return holdWhileAlive(await TextModel.start(...this.workerSetup(opts.spawn ?? spawnTextWorker, opts.backend), files, options, manifest.id, loaded.source, savePlan), lease);
    } catch (err) {
      lease.release();
      throw err;
    }
  }

  /**
   * Saves a plan (e.g. the result of pruning) with the cached model, so the next `text(id)`
   * starts with it: no download, no re-scoring.
   */
  async savePlan(model: ModelSource, plan: TextLoadOptions['plan'] | null): Promise<void> {
    const manifest = await this.resolve(model);
    const entry = await this.store.entry(manifest.id, manifest.revision);
    if (!entry) throw new WhittleError('INVALID_ARGUMENT', `${manifest.id} is not cached; load it first`);
    const { plan: old, ...rest } = entry.extra ?? {};
    await this.store.setExtra(manifest.id, manifest.revision, plan ? { ...rest, plan } : rest);
    // [variant] The old plan's narrowed blocks go with it (a new width plan saves its own).
    // Its fp32 width variant and any compressed ones (ids ending in its width tag).
    const oldPlan = old as LlamaPlan | undefined;
    if (oldPlan?.width && (!plan?.width || widthTag(oldPlan) !== widthTag(plan))) {
      const tag = widthTag(oldPlan);
      for (const e of await this.store.list()) {
        if (e.derivedFrom?.id === manifest.id && e.derivedFrom.revision === manifest.revision && e.id.endsWith(tag)) await this.store.delete(e.id, e.revision);
      }
    }
  }

  /** Loads the Lyra v2 codec (SoundStream) into a worker. */
  async codec(model: string | ModelManifest = LYRA_V2.id, opts: CodecLoadOptions = {}): Promise<Codec> {
    const manifest = await this.resolve(model);
    // Pinned until the handle is disposed: its worker re-reads these files when it respawns.
    const lease = await this.store.lease(manifest);
    try {
      const loaded = await this.store.load(manifest, opts);
      const read = async (name: string) => {
        const blob = loaded.files.get(name);
        if (!blob) throw new WhittleError('BAD_MODEL', `${manifest.id} has no ${name}`, { file: name });
        return blob.arrayBuffer();
      };
      const models = async () => ({ encoder: await read(LYRA_V2.files.encoder), quantizer: await read(LYRA_V2.files.quantizer), decoder: await read(LYRA_V2.files.decoder) });
      return holdWhileAlive(await Codec.start(...this.workerSetup(opts.spawn ?? spawnCodecWorker, opts.backend), models, manifest.id, { requant: opts.requant }), lease);
    } catch (err) {
      lease.release();
      throw err;
    }
  }
}
