/**
 * workers/codec/packet.ts, one packet at a time: unpackPacket over random and mutated packets,
 * and the caller-facing packCodes/packPacket/unpackCodes over hostile codes and quantizer counts.
 */
import { MAX_QUANTIZERS } from '../../../models/codec/bitrates.ts';
import { packCodes, packPacket, unpackCodes, unpackPacket } from '../../../workers/codec/packet.ts';
import { mutateBytes } from '../bytes.ts';
import { hostileNumber } from '../hostile.ts';
import { chance, int, type Rng } from '../rand.ts';
import { expectThat, type FuzzTarget } from '../target.ts';

type Input = { kind: 'unpack'; bytes: Uint8Array } | { kind: 'pack'; codes: ArrayLike<number>; n: number; frame: number };

function validCodes(rng: Rng): number[] {
  return Array.from({ length: MAX_QUANTIZERS }, () => int(rng, 0, 15));
}

export function codecPacketTarget(): FuzzTarget<Input> {
  return {
    name: 'codec-packet',
    allocFactor: 64, // every packet decodes to Int32Array(46): 184 bytes from as few as 4
    load() {},
    generate(rng) {
      if (chance(rng, 0.3)) {
        const codes = chance(rng, 0.5)
          ? validCodes(rng)
          : Array.from({ length: int(rng, 0, 50) }, () => (chance(rng, 0.7) ? int(rng, 0, 15) : hostileNumber(rng)));
        const n = chance(rng, 0.6) ? int(rng, 1, MAX_QUANTIZERS) : hostileNumber(rng);
        const frame = chance(rng, 0.7) ? int(rng, 0, 70_000) : hostileNumber(rng);
        return { input: { kind: 'pack', codes, n, frame }, bytes: 4 * codes.length, kind: 'pack' };
      }
      const n = int(rng, 1, MAX_QUANTIZERS);
      const good = packPacket(validCodes(rng), n, int(rng, 0, 65535));
      const bytes = chance(rng, 0.3)
        ? Uint8Array.from({ length: int(rng, 0, 40) }, () => int(rng, 0, 255))
        : mutateBytes(rng, good, { maxEdits: 3 });
      return { input: { kind: 'unpack', bytes }, bytes: Math.max(1, bytes.byteLength), kind: 'unpack' };
    },
    run(input) {
      if (input.kind === 'pack') {
        const packet = packPacket(input.codes, input.n, input.frame);
        const back = unpackPacket(packet);
        for (let s = 0; s < input.n; s++) expectThat(back.codes[s] === input.codes[s], `stage ${s} did not round-trip`);
        expectThat(
          back.frameIndex === (input.frame & 0xffff) || !Number.isInteger(input.frame),
          `frame ${input.frame} became ${back.frameIndex}`,
        );
        expectThat(
          unpackCodes(packCodes(input.codes, input.n), input.n).every((c, s) => (s < input.n ? c === input.codes[s] : c === -1)),
          'codes did not round-trip',
        );
        return;
      }
      const p = unpackPacket(input.bytes);
      expectThat(
        p.numQuantizers >= 1 && p.numQuantizers <= MAX_QUANTIZERS && p.size <= input.bytes.length,
        `header ${p.numQuantizers}, size ${p.size}`,
      );
      expectThat(
        p.codes.length === MAX_QUANTIZERS && p.codes.every((c, s) => (s < p.numQuantizers ? c >= 0 && c <= 15 : c === -1)),
        'codes out of range',
      );
      expectThat(p.frameIndex >= 0 && p.frameIndex <= 65535, `frame ${p.frameIndex}`);
    },
  };
}
