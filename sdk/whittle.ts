/**
 * The entry point: probes the browser, opens the model store, and starts models in workers.
 *
 * @example
 * const w = await Whittle.create({ backend: 'auto' });
 * const head = await w.headModel('stories260K', { onProgress: console.log });
 * const logits = await head.logits([1, 403]);
 */
import { WhittleError } from '../core/errors.ts';
import { chooseBackend, probeCapabilities, type BackendChoice, type BackendPreference, type Capabilities } from './probe.ts';
import { spawnCodecWorker, spawnHeadWorker, spawnTextWorker } from './client/spawn.ts';
import { Codec } from './codec.ts';
import { LYRA_V2 } from '../models/codec/lyra-v2.ts';
import { TextModel, type TextLoadOptions } from './text-model.ts';
import type { SpawnWorker } from './client/worker-client.ts';
import { HeadModel } from './head-model.ts';
import type { BlobBackend } from './store/blobs.ts';
import { validateManifest, type ModelManifest } from './store/manifest.ts';
import { ModelStore, type LoadOptions } from './store/store.ts';

export interface WhittleOptions {
  /** 'auto' picks WebGPU when an adapter exists, else WASM. */
  backend?: BackendPreference;
  /** Blob storage: OPFS, Cache Storage, or 'auto' (OPFS with Cache Storage fallback). */
  cache?: BlobBackend;
  /** Upper bound on cached bytes; least recently used models are evicted beyond it. */
  budgetBytes?: number;
  /** Where the model manifests are served (written by `npm run models`). */
  manifestsUrl?: string;
  /** Where onnxruntime-web's .mjs/.wasm files are served (same origin; see vite.config.ts). */
  ortBaseUrl?: string;
  /** Storage namespace. */
  storeName?: string;
  /** Most WASM threads to use when cross-origin isolated. */
  maxThreads?: number;
  /** Injected for custom CDNs/auth; used for manifests and model files. */
  fetch?: typeof fetch;
  /** Storage estimate override (embedding apps with their own accounting; tests). */
  estimate?: () => Promise<StorageEstimate>;
}

export interface ModelLoadOptions extends LoadOptions {
  /** Override the backend for this model. */
  backend?: BackendPreference;
  /** Override the worker factory (bundlers without `new URL(..., import.meta.url)` support; tests). */
  spawn?: SpawnWorker;
}

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
    if (!found) throw new WhittleError('INVALID_ARGUMENT', `unknown model '${id}'`, { id });
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

  /** A model id (looked up in the served manifests) or a manifest given directly (validated). */
  private async resolve(model: string | ModelManifest): Promise<ModelManifest> {
    return typeof model === 'string' ? this.manifest(model) : validateManifest(model);
  }

  private runtimeFor(preference?: BackendPreference) {
    const choice = preference ? chooseBackend(this.capabilities, preference, this.options.maxThreads) : this.choice;
    return {
      backend: choice.backend,
      numThreads: choice.numThreads,
      wasmPaths: new URL(this.options.ortBaseUrl ?? '/ort/', location.href).href,
    };
  }

  /**
   * Loads a llama2.c model's zero-block plan (embedding -> norm -> head) into a worker.
   * `model` is an id from the manifests file, or a manifest; `file` defaults to the first `.bin`.
   */
  async headModel(model: string | ModelManifest, opts: ModelLoadOptions & { file?: string } = {}): Promise<HeadModel> {
    const manifest = await this.resolve(model);
    const loaded = await this.store.load(manifest, opts);
    const fileName = opts.file ?? manifest.files.find((f) => f.name.endsWith('.bin'))?.name;
    const blob = fileName ? loaded.files.get(fileName) : undefined;
    if (!blob || !fileName) throw new WhittleError('BAD_MODEL', `${manifest.id} has no llama2.c checkpoint file`);
    return HeadModel.start(opts.spawn ?? spawnHeadWorker, this.runtimeFor(opts.backend), blob, fileName, loaded.source);
  }

  /**
   * Loads a language model into a worker: llama2.c (`.bin` + `tok*.bin`) or Hugging Face
   * (`config.json`, `*.safetensors`, `tokenizer.json`) files, by id or manifest.
   */
  async text(model: string | ModelManifest, opts: ModelLoadOptions & TextLoadOptions = {}): Promise<TextModel> {
    const manifest = await this.resolve(model);
    const loaded = await this.store.load(manifest, opts);
    const names = [...loaded.files.keys()];
    const read = async (name: string) => loaded.files.get(name)!.arrayBuffer();
    const isHf = names.includes('config.json');
    const checkpoint = names.find((n) => n.endsWith('.bin') && !/^tok/.test(n) && n !== 'tokenizer.bin');
    const tokenizer = names.find((n) => /^tok.*\.bin$/.test(n) || n === 'tokenizer.bin' || n === 'tokenizer.json');
    if (!isHf && (!checkpoint || !tokenizer)) {
      throw new WhittleError('BAD_MODEL', `${manifest.id}: expected a llama2.c checkpoint + tokenizer or a Hugging Face folder`, { files: names.join(',') });
    }
    const files = async () =>
      isHf
        ? { format: 'hf' as const, files: Object.fromEntries(await Promise.all(names.map(async (n) => [n, await read(n)] as const))) }
        : { format: 'llama2c' as const, checkpoint: await read(checkpoint!), tokenizer: await read(tokenizer!), name: checkpoint! };
    const { attention } = opts;
    // A plan saved with the cached model (savePlan) is restored unless the caller gives one.
    const saved = (await this.store.entry(manifest.id, manifest.revision))?.extra?.plan as TextLoadOptions['plan'];
    const plan = opts.plan ?? saved;
    return TextModel.start(opts.spawn ?? spawnTextWorker, this.runtimeFor(opts.backend), files, { ...(plan ? { plan } : {}), ...(attention ? { attention } : {}) }, manifest.id, loaded.source);
  }

  /**
   * Saves a plan (e.g. the result of pruning) with the cached model, so the next `text(id)`
   * starts with it: no download, no re-scoring.
   */
  async savePlan(model: string | ModelManifest, plan: TextLoadOptions['plan'] | null): Promise<void> {
    const manifest = await this.resolve(model);
    const entry = await this.store.entry(manifest.id, manifest.revision);
    if (!entry) throw new WhittleError('INVALID_ARGUMENT', `${manifest.id} is not cached; load it first`);
    const { plan: _old, ...rest } = entry.extra ?? {};
    await this.store.setExtra(manifest.id, manifest.revision, plan ? { ...rest, plan } : rest);
  }

  /** Loads the Lyra v2 codec (SoundStream) into a worker. */
  async codec(model: string | ModelManifest = LYRA_V2.id, opts: ModelLoadOptions = {}): Promise<Codec> {
    const manifest = await this.resolve(model);
    const loaded = await this.store.load(manifest, opts);
    const read = async (name: string) => {
      const blob = loaded.files.get(name);
      if (!blob) throw new WhittleError('BAD_MODEL', `${manifest.id} has no ${name}`, { file: name });
      return blob.arrayBuffer();
    };
    const models = async () => ({ encoder: await read(LYRA_V2.files.encoder), quantizer: await read(LYRA_V2.files.quantizer), decoder: await read(LYRA_V2.files.decoder) });
    return Codec.start(opts.spawn ?? spawnCodecWorker, this.runtimeFor(opts.backend), models, manifest.id);
  }
}
