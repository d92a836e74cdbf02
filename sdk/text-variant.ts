/**
 * Compressed variants in the store (the page side of models/compress/variant.ts): after a load
 * with `compress`, the worker's compressed weights are saved as a derived entry keyed by the
 * model's id, revision, the setting and the variant format version; the next load with the same
 * setting reads that entry instead of the source weights (no bf16 read, no quantization).
 *
 *   id        `${model id}#${settingTag(setting)}`     e.g. 'stories-layerskip#q4-g32-rtn'
 *   revision  `${model revision}+variant${VARIANT_VERSION}`
 *   files     model.whittle.safetensors (new bytes) + the source's config.json and tokenizer
 *             files (the same blobs: stored once)
 *
 * A load with `compress` and a width plan (given or saved) keeps its own variant of the narrowed
 * blocks compressed: id `${model id}#${settingTag}-width-${hash}`, format 3.
 * Width variants (a width-pruned plan's narrowed fp32 blocks, format 3) follow the same path: saved by
 * `lm.savePlan(plan)` when the worker compiled that width plan from fp32 weights, keyed by the
 * plan, and loaded instead of the source when the saved plan is restored, so the reload neither
 * slices nor measures anything again:
 *   id        `${model id}#width-${hash of the plan's layers and width}`
 *   revision  `${model revision}+variant${WIDTH_VARIANT_VERSION}`
 *
 * Saving never fails a load: QUOTA (or any storage error) skips it with a `variant` event of
 * action 'skipped'. A variant that fails verification in the worker is deleted ('discarded') and
 * the caller falls back to the source.
 *
 * @example
 * const found = await openStoredVariant(store, manifest, { linear: 'q4', group: 32 }, opts);
 */
import * as Comlink from 'comlink';
import { WhittleError, throwIfAborted } from '../core/errors.ts';
import { resolveForms } from '../models/compress/kernel-choice.ts';
import { settingTag, unstreamableReason, VARIANT_FILE, VARIANT_VERSION, WIDTH_VARIANT_VERSION } from '../models/compress/variant-name.ts';
import type { LlamaPlan, WeightsSetting } from '../models/llama/types.ts';
import type { StoreEvent } from './store/events.ts';
import { entryKey, type ModelManifest } from './store/manifest.ts';
import { derivedManifest, type LoadedModel, type LoadOptions, type ModelStore, type StoreLease } from './store/store.ts';
import type { CacheEntry } from './store/meta.ts';
import type { TextModel } from './text-model.ts';
import { transferablesOf } from './text-model.ts';
import { textSourceOf } from './text-source.ts';
import { WorkerClient, type SpawnWorker } from './client/worker-client.ts';
import type { TextService } from '../workers/text/service.ts';

/** Source files a variant folder keeps: everything but the weights (config, tokenizer, generation config). */
const isWeightFile = (name: string) => /\.safetensors(\.index\.json)?$/.test(name) || (name.endsWith('.bin') && !/^tok.*\.bin$/.test(name) && name !== 'tokenizer.bin');

/**
 * The derived entry's id and revision for `setting` of `source`; with a width `plan`, the variant
 * of that plan's narrowed blocks compressed with `setting` (`…#q8-g32-rtn-width-1a2b3c4d`).
 */
export function variantKey(source: Pick<ModelManifest, 'id' | 'revision'>, setting: WeightsSetting, plan?: LlamaPlan): { id: string; revision: string } {
  if (plan?.width) return { id: `${source.id}#${settingTag(setting)}-${widthTag(plan)}`, revision: `${source.revision}+variant${WIDTH_VARIANT_VERSION}` };
  return { id: `${source.id}#${settingTag(setting)}`, revision: `${source.revision}+variant${VARIANT_VERSION}` };
}

/** 32-bit FNV-1a of a string, as 8 hex digits: a short stable name for a plan. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

/** A width plan's name in store ids: its blocks and width (the exit does not change the weights). */
export function widthTag(plan: LlamaPlan): string {
  const w = plan.width!;
  return `width-${fnv1a(JSON.stringify({ layers: plan.layers, kvHeads: w.kvHeads, ffn: w.ffn, bias: w.bias === true }))}`;
}

/** The derived entry's id and revision for the (fp32) width variant of `plan`. */
export function widthVariantKey(source: Pick<ModelManifest, 'id' | 'revision'>, plan: LlamaPlan): { id: string; revision: string } {
  return { id: `${source.id}#${widthTag(plan)}`, revision: `${source.revision}+variant${WIDTH_VARIANT_VERSION}` };
}

/** Whether a loaded folder is a variant (a hosted one by URL, or a derived entry). */
export const isVariantFolder = (names: Iterable<string>): boolean => [...names].includes(VARIANT_FILE);

/**
 * The stored variant of `source` for `setting`, pinned, with its files from the cache; null when
 * there is none (or it failed the store's checks, which drops it).
 */
export async function openStoredVariant(
  store: ModelStore,
  source: ModelManifest,
  setting: WeightsSetting,
  opts: LoadOptions,
  plan?: LlamaPlan,
): Promise<{ manifest: ModelManifest; loaded: LoadedModel; lease: StoreLease } | null> {
  return openVariantEntry(store, source, variantKey(source, setting, plan), opts);
}

/** The stored width variant of `source` for `plan` (saved by `lm.savePlan`), as openStoredVariant; null when there is none. */
export async function openStoredWidthVariant(store: ModelStore, source: ModelManifest, plan: LlamaPlan, opts: LoadOptions): Promise<{ manifest: ModelManifest; loaded: LoadedModel; lease: StoreLease } | null> {
  return plan.width ? openVariantEntry(store, source, widthVariantKey(source, plan), opts) : null;
}

async function openVariantEntry(store: ModelStore, source: ModelManifest, key: { id: string; revision: string }, opts: LoadOptions): Promise<{ manifest: ModelManifest; loaded: LoadedModel; lease: StoreLease } | null> {
  const entry = await store.entry(key.id, key.revision);
  if (!entry) return null;
  // Pinned before reading, so no other load evicts it between here and the worker reading it.
  const lease = await store.lease(key);
  try {
    const manifest = { ...derivedManifest(entry), ...(entry.integrity ? { integrity: entry.integrity } : {}) };
    const loaded = await store.loadCached(manifest, opts);
    if (!loaded) {
      lease.release();
      return null;
    }
    opts.onProgress?.({ type: 'variant', modelId: source.id, variant: key.id, action: 'loaded', bytes: entry.bytes });
    return { manifest, loaded, lease };
  } catch (err) {
    lease.release();
    throw err;
  }
}

/** Whether a failed variant load means the variant is bad (fall back to the source) rather than the load (rethrow). */
export const variantIsBad = (err: unknown): boolean => err instanceof WhittleError && (err.code === 'BAD_MODEL' || err.code === 'UNSUPPORTED');

/** Deletes a variant that failed verification and says so. */
export async function discardVariant(store: ModelStore, source: ModelManifest, key: { id: string; revision: string }, reason: string, onProgress?: (e: StoreEvent) => void): Promise<void> {
  await store.delete(key.id, key.revision);
  onProgress?.({ type: 'variant', modelId: source.id, variant: key.id, action: 'discarded', reason });
}

/**
 * Saves the compressed weights `lm` holds (loaded from `loaded` with `compress: setting` and
 * `keepVariant`) as the derived entry. Never throws: a variant that cannot be saved is reported
 * (`skipped`, with the reason) and the next load compresses again.
 */
export async function saveVariant(store: ModelStore, lm: TextModel, source: ModelManifest, loaded: LoadedModel, setting: WeightsSetting, opts: LoadOptions, plan?: LlamaPlan): Promise<void> {
  // Exported first, whatever happens next: it also frees the packed copy the worker kept for it.
  const key = variantKey(source, setting, plan);
  await putVariant(store, (s) => lm.exportVariant(s), source, loaded, key, key.id.slice(source.id.length + 1), opts);
}

/**
 * Saves the width variant of `plan` (the plan `exportWidth` exports: the worker's compiled one)
 * as a derived entry. Never throws: `skipped` with the reason, and the next load slices again.
 */
export async function saveWidthVariant(store: ModelStore, exportWidth: (source: { id: string; revision: string; configSha256?: string }) => Promise<ArrayBuffer[]>, source: ModelManifest, loaded: LoadedModel, plan: LlamaPlan, opts: LoadOptions): Promise<void> {
  const key = widthVariantKey(source, plan);
  await putVariant(store, exportWidth, source, loaded, key, key.id.slice(source.id.length + 1), opts);
}

/**
 * What saveStreamedVariant did: saved the variant and `opened` it for the load (pinned; null when
 * opening it failed: load the source), or 'whole-model' / 'skipped' (see saveStreamedVariant).
 */
export type StreamedSave = { opened: { manifest: ModelManifest; loaded: LoadedModel; lease: StoreLease } | null } | 'whole-model' | 'skipped';

/** `p`, or ABORTED as soon as `signal` aborts (what `p` was doing is the caller's to stop). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new WhittleError('ABORTED', 'The operation was aborted', {}));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * [variant] The first load with `compress`, without holding the model: a worker of its own
 * (`spawn`; no onnxruntime started) compresses the source in `loaded` into
 * model.whittle.safetensors a block at a time (TextService.openVariantStream), and the bytes go
 * into the store as they come (ModelStore.putDerivedStream: room made for the announced size
 * first, hashed as written), with `variant` events of action 'compressing' (bytes written, of
 * `total`). The caller then loads the variant as any later load does, so the first load peaks
 * where a cached one does instead of holding the stored form, the compiled weights and the file
 * at once. Returns the saved variant opened for the load (its files, pinned by their own lease:
 * the caller releases it, or startText does), or null in `opened` when opening it failed;
 * 'whole-model' when the setting needs the whole model (sparsity,
 * AWQ; no event) or the stream failed otherwise (a 'skipped' event says why), for which the
 * caller loads the source with `keepVariant` and saves after, as before; 'skipped' (with the
 * event) for QUOTA or a storage failure, for which the caller loads the source compressed and
 * saves nothing (the next load tries again). An abort (`opts.signal`) throws ABORTED at once; a
 * setting the backend refuses throws INVALID_ARGUMENT before anything starts.
 */
export async function saveStreamedVariant(store: ModelStore, spawn: SpawnWorker, backend: 'wasm' | 'webgpu', source: ModelManifest, loaded: LoadedModel, setting: WeightsSetting, opts: LoadOptions): Promise<StreamedSave> {
  const key = variantKey(source, setting);
  const emit = (e: StoreEvent) => opts.onProgress?.(e);
  if (unstreamableReason(setting) !== null) return 'whole-model';
  // A setting this backend refuses (hqq on WASM's int8 kernel) fails the load here, as it would in the worker.
  resolveForms(setting, backend);
  const client = new WorkerClient<TextService>({ spawn, label: `compress:${source.id}` });
  // Pinned from before it exists until the load holds its own lease on it: another tab's
  // eviction cannot take the new entry in between.
  const pin = await store.lease(key);
  try {
    const worker = await client.pin();
    const entry = await store.entry(source.id, source.revision);
    if (!entry) throw new WhittleError('STORAGE', `${source.id} has no cache entry to derive a variant from`);
    const files = await textSourceOf(loaded, source.id)();
    if (files.format === 'variant') throw new WhittleError('INVALID_ARGUMENT', `${source.id} is a variant already`);
    const { size } = await worker.call((r) => r.openVariantStream(Comlink.transfer(files, transferablesOf(files)), setting, recordedSource(source, entry), backend));
    let written = 0;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      for (;;) {
        throwIfAborted(opts.signal);
        // The worker quantizes a block (or the head) per call: an abort answers at once, and the
        // worker is terminated below rather than waited for.
        const chunk = await untilAborted(worker.call((r) => r.nextVariantChunk()), opts.signal);
        if (!chunk) return;
        written += chunk.byteLength;
        emit({ type: 'variant', modelId: source.id, variant: key.id, action: 'compressing', bytes: written, total: size });
        yield chunk;
      }
    }
    const { derived, shared } = derivation(entry, source, loaded, key, key.id.slice(source.id.length + 1));
    emit(savedEvent(source, key, await store.putDerivedStream(derived, { name: VARIANT_FILE, size, chunks: chunks() }, shared, opts)));
    // Opening it can fail too (storage, verifyOnLoad): the caller then loads the source.
    const opened = await openStoredVariant(store, source, setting, opts).catch((err: unknown) => {
      if (err instanceof WhittleError && err.code === 'ABORTED') throw err;
      return null;
    });
    return { opened };
  } catch (err) {
    if (err instanceof WhittleError && err.code === 'ABORTED') throw err;
    emit(skippedEvent(source, key, err));
    // No room (or no storage) would fail a second save the same way; anything else (the worker
    // died, the stream broke its own header) may not: the load keeps its weights to save them.
    return err instanceof WhittleError && (err.code === 'QUOTA' || err.code === 'STORAGE') ? 'skipped' : 'whole-model';
  } finally {
    client.dispose();
    pin.release();
  }
}

async function putVariant(
  store: ModelStore,
  exportParts: (source: { id: string; revision: string; configSha256?: string }) => Promise<ArrayBuffer[]>,
  source: ModelManifest,
  loaded: LoadedModel,
  key: { id: string; revision: string },
  tag: string,
  opts: LoadOptions,
): Promise<void> {
  const emit = (e: StoreEvent) => opts.onProgress?.(e);
  try {
    const entry = await store.entry(source.id, source.revision);
    // Exported before the entry is checked: the export also frees the packed copy the worker kept for it.
    const parts = await exportParts(recordedSource(source, entry));
    if (!entry) throw new WhittleError('STORAGE', `${source.id} has no cache entry to derive a variant from`);
    const { derived, shared } = derivation(entry, source, loaded, key, tag);
    emit(savedEvent(source, key, await store.putDerived(derived, [{ name: VARIANT_FILE, blob: new Blob(parts) }, ...shared], opts)));
  } catch (err) {
    emit(skippedEvent(source, key, err));
  }
}

/** What a variant records of its source: id, revision and the digest of its config.json (when the entry has one). */
function recordedSource(source: ModelManifest, entry: CacheEntry | undefined): { id: string; revision: string; configSha256?: string } {
  const configSha256 = entry?.files.find((f) => f.name === 'config.json')?.sha256;
  return { id: source.id, revision: source.revision, ...(configSha256 ? { configSha256 } : {}) };
}

/** A variant entry of `source` (store key `key`, variant `tag`): what it derives from and the source's non-weight files it shares (stored once). */
function derivation(entry: CacheEntry, source: ModelManifest, loaded: LoadedModel, key: { id: string; revision: string }, tag: string) {
  return {
    derived: { ...key, derivedFrom: { id: source.id, revision: source.revision, variant: tag }, ...(entry.integrity ? { integrity: entry.integrity } : {}), ...(entry.license ? { license: entry.license } : {}) },
    shared: entry.files.filter((f) => !isWeightFile(f.name) && loaded.files.has(f.name)).map((f) => ({ name: f.name, sha256: f.sha256, size: f.size })),
  };
}

const savedEvent = (source: ModelManifest, key: { id: string }, manifest: ModelManifest): StoreEvent => ({ type: 'variant', modelId: source.id, variant: key.id, action: 'saved', bytes: manifest.files.reduce((n, f) => n + f.size, 0) });

const skippedEvent = (source: ModelManifest, key: { id: string }, err: unknown): StoreEvent => ({ type: 'variant', modelId: source.id, variant: key.id, action: 'skipped', reason: err instanceof WhittleError ? `${err.code}: ${err.message}` : String(err) });

/** The entry key of the variant (for tests and listings). */
export const variantEntryKey = (source: Pick<ModelManifest, 'id' | 'revision'>, setting: WeightsSetting): string => entryKey(variantKey(source, setting));
