/** Every fuzz target by name; each is loaded (its seed files read) only when a run asks for it. */
import type { FuzzTarget } from '../target.ts';
import { chatTemplateTarget } from './chat-template.ts';
import { codecPacketTarget } from './codec-packet.ts';
import { folderManifestTarget } from './folder-manifest.ts';
import { hfConfigTarget } from './hf-config.ts';
import { llama2cCheckpointTarget } from './llama2c-checkpoint.ts';
import { llama2cTokenizerTarget } from './llama2c-tokenizer.ts';
import { manifestTarget } from './manifest.ts';
import { safetensorsTarget } from './safetensors.ts';
import { tfliteTarget } from './tflite.ts';
import { tokenizerJsonTarget } from './tokenizer-json.ts';
import { variantTarget } from './variant.ts';
import { wavTarget } from './wav.ts';
import { weightMapTarget } from './weight-map.ts';
import { wlcStreamTarget } from './wlc-stream.ts';

const FACTORIES: Record<string, () => FuzzTarget> = {
  manifest: manifestTarget,
  'folder-manifest': folderManifestTarget,
  safetensors: safetensorsTarget,
  'weight-map': weightMapTarget,
  'hf-config': hfConfigTarget,
  'llama2c-checkpoint': llama2cCheckpointTarget,
  'llama2c-tokenizer': llama2cTokenizerTarget,
  'tokenizer-json': tokenizerJsonTarget,
  'chat-template': chatTemplateTarget,
  tflite: tfliteTarget,
  wav: wavTarget,
  'codec-packet': codecPacketTarget,
  'wlc-stream': wlcStreamTarget,
  variant: variantTarget,
};

export const TARGET_NAMES: readonly string[] = Object.keys(FACTORIES);

export function loadTarget(name: string): FuzzTarget {
  const factory = FACTORIES[name];
  if (!factory) throw new Error(`unknown fuzz target ${name} (one of ${TARGET_NAMES.join(', ')})`);
  const target = factory();
  target.load();
  return target;
}
