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
 * The short, stable name of a setting, for cache ids (`stories-layerskip#q4-g32-rtn`) and file
 * names. The kernel and accuracy level are left out: they are resolved per backend at load, from
 * the same stored weights. The head width is in because it changes the stored bytes, the method
 * (rtn / hqq / awq) because it changes the values.
 */
export function settingTag(setting: WeightsSetting): string {
  validateWeights(setting);
  const group = setting.linear === 'f32' ? '' : `-g${setting.group ?? 32}`;
  const head = setting.head ? `-h${setting.head}` : '';
  return `${setting.linear}${group}${head}-${setting.method ?? 'rtn'}`;
}
