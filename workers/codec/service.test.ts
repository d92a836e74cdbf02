/** The codec service's live-path calls in Node (onnxruntime-web WASM, one thread): warm-up and batched playout slots. */
import { beforeAll, describe, expect, it } from 'vitest';
import { readLocalModelFile } from '../../models/local.ts';
import { parseWav } from '../../core/wav.ts';
import { WhittleError } from '../../core/errors.ts';
import { FRAME_SAMPLES } from '../../models/codec/bitrates.ts';
import { CodecService } from './service.ts';

const models = () => ({
  encoder: readLocalModelFile('lyra-v2', 'soundstream_encoder.tflite'),
  quantizer: readLocalModelFile('lyra-v2', 'quantizer.tflite'),
  decoder: readLocalModelFile('lyra-v2', 'lyragan.tflite'),
});

async function service(): Promise<CodecService> {
  const s = new CodecService();
  await s.init({ backend: 'wasm', numThreads: 1 });
  await s.load(models());
  return s;
}

let speech: Float32Array;
beforeAll(() => {
  speech = parseWav(readLocalModelFile('lyra-testdata', 'sample1_16kHz.wav'), { mono: true }).samples.subarray(0, 24 * FRAME_SAMPLES);
});

/** The packets of `frames` consecutive frames, split per frame. */
function split(encoded: { packets: Uint8Array; offsets: Int32Array }): Uint8Array[] {
  return Array.from({ length: encoded.offsets.length - 1 }, (_, i) => encoded.packets.slice(encoded.offsets[i]!, encoded.offsets[i + 1]!));
}

describe('CodecService live path', () => {
  it('warmUp leaves the streaming state as fresh as a new service', async () => {
    const warm = await service();
    const times = await warm.warmUp(5);
    expect(times.length).toBe(5);
    expect([...times].every((t) => t > 0)).toBe(true);
    const cold = await service();
    const a = await warm.encodeFrames(speech, 30, 0);
    const b = await cold.encodeFrames(speech, 30, 0);
    expect(a.packets).toEqual(b.packets);
    expect((await warm.decodePackets(a.packets)).pcm).toEqual((await cold.decodePackets(b.packets)).pcm);
  }, 120_000);

  it('warmUp refuses a frame count outside 1..100 with a typed error', async () => {
    const s = await service();
    for (const bad of [0, 101, 2.5, NaN]) await expect(s.warmUp(bad)).rejects.toSatisfy((e) => e instanceof WhittleError && e.code === 'INVALID_ARGUMENT');
  }, 60_000);

  it('decodeSlots gives the same audio as one decode or conceal call per slot', async () => {
    const enc = await service();
    const packets = split(await enc.encodeFrames(speech, 30, 0));
    const present = Uint8Array.from(packets, (_, i) => (i % 5 === 3 || i === 10 || i === 11 ? 0 : 1)); // single and double losses
    const one = await service();
    const expected = new Float32Array(packets.length * FRAME_SAMPLES);
    for (let i = 0; i < packets.length; i++) expected.set(present[i] ? (await one.decodePackets(packets[i]!)).pcm : await one.conceal(), i * FRAME_SAMPLES);
    const batched = await service();
    // In three calls, as a receiver that fell behind would make them.
    const got = new Float32Array(packets.length * FRAME_SAMPLES);
    for (const [from, to] of [[0, 1], [1, 9], [9, packets.length]] as const) {
      const kept = packets.slice(from, to).filter((_, i) => present[from + i]);
      const joined = new Uint8Array(kept.reduce((n, p) => n + p.length, 0));
      kept.reduce((at, p) => (joined.set(p, at), at + p.length), 0);
      const out = await batched.decodeSlots(joined, present.slice(from, to));
      got.set(out.pcm, from * FRAME_SAMPLES);
      expect([...out.quantizers].map((q, i) => (present[from + i] ? q === 30 : q === 0))).not.toContain(false);
    }
    expect(got).toEqual(expected);
  }, 120_000);

  it('decodeSlots refuses packets that do not match the slots, and loses nothing', async () => {
    const s = await service();
    const packets = split(await s.encodeFrames(speech.subarray(0, 2 * FRAME_SAMPLES), 30, 0));
    const isInvalid = (e: unknown) => e instanceof WhittleError && e.code === 'INVALID_ARGUMENT';
    await expect(s.decodeSlots(packets[0]!, Uint8Array.of(1, 1))).rejects.toSatisfy(isInvalid); // too few packets
    const both = new Uint8Array([...packets[0]!, ...packets[1]!]);
    await expect(s.decodeSlots(both, Uint8Array.of(1, 0))).rejects.toSatisfy(isInvalid); // too many
    // Nothing ran: the decoder's state is where it was, so slot 0 decodes as on a fresh service.
    const fresh = await service();
    expect((await s.decodeSlots(packets[0]!, Uint8Array.of(1))).pcm).toEqual((await fresh.decodePackets(packets[0]!)).pcm);
  }, 60_000);
});
