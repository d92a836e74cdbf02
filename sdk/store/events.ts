/**
 * Progress of a model load, as a union keyed by `type` (switch on it).
 *
 * @example
 * const onProgress = (e: StoreEvent) => {
 *   if (e.type === 'progress') bar.value = e.overallLoaded / e.overallTotal;
 *   else if (e.type === 'done') console.log(`${e.modelId} from the ${e.source}`);
 * };
 */
export type StoreEvent =
  | { type: 'start'; modelId: string; files: number; totalBytes: number; cachedBytes: number }
  | {
      type: 'progress';
      modelId: string;
      file: string;
      loaded: number;
      total: number;
      overallLoaded: number;
      overallTotal: number;
    }
  | { type: 'retry'; modelId: string; file: string; attempt: number; resumeFrom: number; reason: string }
  | { type: 'file-done'; modelId: string; file: string; source: 'network' | 'cache' }
  | { type: 'discarded'; modelId: string; file: string; reason: string }
  /** `pinned`: entries in use (a live model handle holds a lease), which eviction skipped. */
  | { type: 'evicted'; modelId: string; evicted: string[]; pinned: string[] }
  | { type: 'done'; modelId: string; source: 'network' | 'cache'; bytes: number }
  /**
   * A compressed variant (a load with `compress`): `loaded` from the store instead of the source
   * weights; `saved` after compressing; `skipped` when it could not be saved (e.g. QUOTA: the
   * model still loads, only the next load compresses again); `discarded` when a stored one failed
   * verification (the load then falls back to the source). `variant` is the derived entry's id.
   */
  | { type: 'variant'; modelId: string; variant: string; action: 'loaded' | 'saved' | 'skipped' | 'discarded'; bytes?: number; reason?: string }
  /** A variant being compressed into the store a block at a time (the first load with `compress`): `bytes` of the file's `total` written so far. */
  | { type: 'variant'; modelId: string; variant: string; action: 'compressing'; bytes: number; total: number };
