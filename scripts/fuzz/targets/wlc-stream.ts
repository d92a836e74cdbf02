/**
 * `.wlc` streams (what `whittle codec encode` writes and `decode` reads: concatenated packets,
 * split by workers/codec/packet.ts unpackStream): real-shaped streams of switching bitrates,
 * mutated (a corrupt count byte shifts every packet after it), truncated and random.
 */
import { MAX_QUANTIZERS } from '../../../models/codec/bitrates.ts';
import { packPacket, unpackStream } from '../../../workers/codec/packet.ts';
import { mutateBytes } from '../bytes.ts';
import { chance, int, type Rng } from '../rand.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

function stream(rng: Rng): Uint8Array {
  const frames = chance(rng, 0.95) ? int(rng, 0, 200) : int(rng, 1000, 5000);
  const parts: Uint8Array[] = [];
  let n = int(rng, 1, MAX_QUANTIZERS);
  for (let f = 0; f < frames; f++) {
    if (chance(rng, 0.1)) n = int(rng, 1, MAX_QUANTIZERS);
    parts.push(
      packPacket(
        Array.from({ length: MAX_QUANTIZERS }, () => int(rng, 0, 15)),
        n,
        f,
      ),
    );
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function wlcStreamTarget(): FuzzTarget<Uint8Array> {
  return {
    name: 'wlc-stream',
    allocFactor: 64, // as codec-packet: 184 bytes of codes per packet of 4 or more bytes
    load() {},
    generate(rng) {
      const good = stream(rng);
      const r = rng();
      const bytes =
        r < 0.6 ? mutateBytes(rng, good) : r < 0.8 ? good : Uint8Array.from({ length: int(rng, 0, 4096) }, () => int(rng, 0, 255));
      return { input: bytes, bytes: Math.max(1, bytes.byteLength), kind: r < 0.6 ? 'mutate' : r < 0.8 ? 'valid' : 'random' };
    },
    run(bytes) {
      const packets = unpackStream(bytes);
      let size = 0;
      for (const p of packets) {
        expectThat(p.numQuantizers >= 1 && p.numQuantizers <= MAX_QUANTIZERS, `count ${p.numQuantizers}`);
        size += 3 + Math.ceil(p.numQuantizers / 2);
      }
      expectThat(size === bytes.length, `packets cover ${size} of ${bytes.length} bytes`);
    },
  };
}
