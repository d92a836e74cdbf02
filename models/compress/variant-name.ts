/**
 * A compressed variant's names: the file, the format version and the setting's tag. Apart from
 * variant.ts so the page (sdk/text-variant.ts) can key store entries without bundling the
 * reader, the writer or any quantizer: the main thread stays small.
 *
 * @example
 * settingTag({ linear: 'q4', group: 32 }); // 'q4-g32-rtn'
 */
import type { WeightsSetting } from '../llama/types.ts';
import { validateWeights } from './kernel-choice.ts';

export const VARIANT_FILE = 'model.whittle.safetensors';
/** Bumped when the file's layout or metadata change meaning; part of the store key of a cached variant. */
export const VARIANT_VERSION = 1;
/**
 * The version a *sparse* variant is written as (block linears as index + kept values,
 * sparse-linear.ts): a reader of version 1 says UNSUPPORTED instead of BAD_MODEL for the new
 * tensors. Dense variants keep version 1 (their bytes and store keys do not change).
 */
export const SPARSE_VARIANT_VERSION = 2;
/**
 * The version a variant of a *width-pruned* plan is written as (some blocks narrowed, metadata
 * `width`; sparse or not): older readers say UNSUPPORTED rather than BAD_MODEL for its shapes.
 */
export const WIDTH_VARIANT_VERSION = 3;

/**
 * The short, stable name of a setting, for cache ids (`stories-layerskip#q4-g32-rtn`) and file
 * names. The kernel and accuracy level are left out: they are resolved per backend at load, from
 * the same stored weights. The head width is in because it changes the stored bytes, the method
 * (rtn / hqq / awq) and the sparsity because they change the values.
 */
export function settingTag(setting: WeightsSetting): string {
  validateWeights(setting);
  const group = setting.linear === 'f32' ? '' : `-g${setting.group ?? 32}`;
  const head = setting.head ? `-h${setting.head}` : '';
  const sp = setting.sparsity;
  // '2:4' -> -sparse24-wanda; unstructured 50% -> -sparse50-wanda (the percentage zeroed).
  const sparse = sp ? `-sparse${sp.pattern === '2:4' ? '24' : String(Math.round((sp.ratio ?? 0.5) * 1000) / 10)}-${sp.method ?? 'wanda'}` : '';
  return `${setting.linear}${group}${head}-${setting.method ?? 'rtn'}${sparse}`;
}

/**
 * Why a variant for `setting` cannot be written a block at a time from the source weights alone
 * (variant-stream.ts), or null when it can: the page asks before it starts the streamed save.
 */
export function unstreamableReason(setting: WeightsSetting): string | null {
  if (setting.sparsity) return 'a sparse variant stores kept values whose count is known only after masking';
  if (setting.method === 'awq') return "method 'awq' measures activations of the whole model first";
  if (setting.linear === 'f32') return "linear 'f32' stores fp32 blocks (nothing to compress)";
  return null;
}
