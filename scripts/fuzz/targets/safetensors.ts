/**
 * models/import/hf/safetensors.ts (readSafetensors + tensorAsFloat32): the real stories-baseline
 * file with its bytes mutated (mostly in the header), its header JSON edited structurally and
 * re-framed, and generated files whose headers claim overflowing shapes, offsets past the end
 * and terabytes. (safetensors.ts is the lead's to edit: findings here are reported, not fixed.)
 */
import { readSafetensors, tensorAsFloat32 } from '../../../models/import/hf/safetensors.ts';
import { bufferOf, mutateBytes } from '../bytes.ts';
import { HOSTILE_NUMBER_LITERALS } from '../hostile.ts';
import { mutateJsonText } from '../json.ts';
import { chance, int, pick, type Rng } from '../rand.ts';
import { seedBytes } from '../seeds.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

const WIDTH: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** header length (u64 LE) + header text + data. */
function frame(header: string, data: Uint8Array, claimed?: bigint): Uint8Array {
  const text = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, claimed ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

/** A small file whose one or two tensors make hostile claims (as raw JSON number literals). */
function generated(rng: Rng): Uint8Array {
  const dataBytes = int(rng, 0, 64);
  const num = () => {
    const r = rng();
    if (r < 0.5) return String(int(rng, 0, dataBytes + 8));
    if (r < 0.97) return pick(rng, HOSTILE_NUMBER_LITERALS);
    // A number nested in arrays (messages that serialize it recurse; a worker's stack takes ~10,000 levels).
    const depth = pick(rng, [2, 100_000]);
    return `${'['.repeat(depth)}0${']'.repeat(depth)}`;
  };
  const entries = Array.from({ length: int(rng, 1, 3) }, (_, i) => {
    const shape = Array.from({ length: int(rng, 0, 4) }, num).join(',');
    const dtype = pick(rng, ['F32', 'F16', 'BF16', 'I8', 'F64', 'Q4', '']);
    return `"t${i}":{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${num()},${num()}]}`;
  });
  const header = `{${entries.join(',')}${chance(rng, 0.3) ? ',"__metadata__":{"format":"pt"}' : ''}}`;
  const claimed = chance(rng, 0.1) ? pick(rng, [0n, 2n ** 40n, 2n ** 64n - 1n, BigInt(header.length + 1)]) : undefined;
  return frame(header, new Uint8Array(dataBytes).fill(0x3f), claimed);
}

export function safetensorsTarget(): FuzzTarget<ArrayBuffer> {
  let seed = new Uint8Array(0);
  let headerText = '';
  let headerJson: unknown;
  return {
    name: 'safetensors',
    allocFactor: 4, // F16/BF16 widen to float32 (2x), plus slices of unaligned F32 tensors
    load() {
      seed = seedBytes('stories-baseline', 'model.safetensors');
      const n = Number(new DataView(seed.buffer).getBigUint64(0, true));
      headerText = new TextDecoder().decode(seed.subarray(8, 8 + n));
      headerJson = JSON.parse(headerText);
    },
    generate(rng) {
      const r = rng();
      const headerEnd = 8 + headerText.length;
      let bytes: Uint8Array;
      let kind: string;
      if (r < 0.45) {
        bytes = mutateBytes(rng, seed, { hot: [{ start: 0, end: headerEnd + 64 }] });
        kind = 'mutate-bytes';
      } else if (r < 0.8) {
        let text: string;
        try {
          text = mutateJsonText(rng, headerJson, { keys: ['dtype', 'shape', 'data_offsets', '__metadata__'] });
        } catch {
          text = headerText; // an edit past V8's string length: this case keeps the real header
        }
        bytes = frame(text, seed.subarray(headerEnd, chance(rng, 0.2) ? int(rng, headerEnd, seed.length) : seed.length));
        kind = 'mutate-header-json';
      } else {
        bytes = generated(rng);
        kind = 'generated';
      }
      return { input: bufferOf(bytes), bytes: bytes.byteLength, kind };
    },
    run(buffer) {
      const file = readSafetensors(buffer);
      const headerLen = Number(new DataView(buffer).getBigUint64(0, true));
      const ranges: [number, number][] = [];
      for (const [key, t] of file.tensors) {
        expectThat(
          t.begin >= 8 + headerLen && t.begin <= t.end && t.end <= buffer.byteLength,
          `${key}: [${t.begin}, ${t.end}) outside the data`,
        );
        const count = t.shape.reduce((a, b) => a * b, 1);
        const width = WIDTH[t.dtype];
        if (width !== undefined)
          expectThat(count * width === t.end - t.begin, `${key}: ${t.dtype}[${t.shape}] in ${t.end - t.begin} bytes`);
        if (t.end > t.begin) ranges.push([t.begin, t.end]);
        if (t.dtype === 'F32' || t.dtype === 'F16' || t.dtype === 'BF16') {
          expectThat(tensorAsFloat32(file, key).length === count, `${key}: wrong element count`);
        }
      }
      ranges.sort((a, b) => a[0] - b[0]);
      for (let i = 1; i < ranges.length; i++) expectThat(ranges[i]![0] >= ranges[i - 1]![1], 'overlapping tensors accepted');
    },
  };
}
