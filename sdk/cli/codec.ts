/**
 * `whittle codec ...` subcommands (Node): the same LyraCodecEngine a worker runs, on
 * onnxruntime-web's WASM build through workers/ort/runtime.ts. `main.ts` dispatches here.
 *
 *   whittle codec encode <in.wav> <out.lyra> [--kbps 6 | --quantizers 30]
 *   whittle codec decode <in.lyra> <out.wav> [--rate 16000]
 *   whittle codec roundtrip <in.wav> <out.wav> [--kbps 6 | --quantizers 30] [--json]
 *   whittle codec rates [--json]
 *
 * Input WAVs are mono 16-bit PCM or float at any rate (resampled to Lyra's 16 kHz). A .lyra
 * file is a concatenation of Whittle packets (workers/codec/packet.ts): a 3-byte header with
 * the quantizer count and frame index, then Lyra's bit-packed codes, so the rate may change
 * per frame.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WhittleError, asWhittleError } from '../../core/errors.ts';
import { readRegistry } from '../../models/local.ts';
import { ensureRegistryModel } from './registry-files.ts';
import { LYRA_V2 } from '../../models/codec/lyra-v2.ts';
import { loadOrt } from '../../workers/ort/runtime.ts';
import { LyraCodecEngine } from '../../workers/codec/engine.ts';
import { BITRATES, FRAME_SAMPLES, SAMPLE_RATE, checkQuantizers, quantizersForKbps } from '../../models/codec/bitrates.ts';
import { packPacket, unpackStream } from '../../workers/codec/packet.ts';
import { parseWav, writeWav } from '../../core/wav.ts';
import { resample } from '../../workers/codec/resample.ts';
import { logSpectralDistance } from '../../core/audio-metrics.ts';

export const CODEC_USAGE = `usage:
  whittle codec encode [--model lyra-v2] <in.wav> <out.wlc> [--kbps K | --quantizers N] [--models DIR] [--threads N]
  whittle codec decode [--model lyra-v2] <in.wlc> <out.wav> [--rate HZ] [--models DIR] [--threads N]
  whittle codec roundtrip [--model lyra-v2] <in.wav> <out.wav> [--kbps K | --quantizers N] [--keep-rate] [--models DIR] [--json]
  --model: a registry id fetched by \`npm run models\` (only lyra-v2 today); --models: a folder with the .tflite files instead
  roundtrip writes 16 kHz audio, or the input's rate with --keep-rate
  whittle codec rates [--json]
  kbps: 0.2..9.2 in steps of 0.2 (3.2, 6 and 9.2 are Lyra's reference rates); default 6`;

function usage(message: string): never {
  throw new WhittleError('INVALID_ARGUMENT', `${message}\n${CODEC_USAGE}`);
}

const OPTIONS = {
  kbps: { type: 'string' },
  quantizers: { type: 'string' },
  rate: { type: 'string' },
  model: { type: 'string' },
  models: { type: 'string' },
  'keep-rate': { type: 'boolean', default: false },
  threads: { type: 'string' },
  json: { type: 'boolean', default: false },
} as const;

function positiveInt(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) usage(`--${name} must be a positive integer, got '${value}'`);
  return n;
}

function quantizersOf(v: { kbps?: string; quantizers?: string }): number {
  if (v.kbps !== undefined && v.quantizers !== undefined) usage('give --kbps or --quantizers, not both');
  if (v.quantizers !== undefined) {
    const n = Number(v.quantizers);
    checkQuantizers(n);
    return n;
  }
  const kbps = v.kbps === undefined ? 6 : Number(v.kbps);
  if (!Number.isFinite(kbps)) usage(`--kbps must be a number, got '${v.kbps}'`);
  return quantizersForKbps(kbps);
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

async function createEngine(modelsDir: string | undefined, threads: number | undefined, modelId: string = LYRA_V2.id): Promise<LyraCodecEngine> {
  if (modelId !== LYRA_V2.id) usage(`unknown codec model '${modelId}' (known: ${LYRA_V2.id})`);
  const registered = readRegistry().models.find((m) => m.id === modelId);
  if (!modelsDir && !registered) usage(`${modelId} is not in the registry`);
  // In the repository: what `npm run models` fetched; from an installed package: the user cache.
  const dir = modelsDir ?? (await ensureRegistryModel(registered!));
  const file = (name: string) => toArrayBuffer(readFileSync(join(dir, name)));
  const ort = await loadOrt({ backend: 'wasm', numThreads: threads ?? 1 });
  const { encoder, quantizer, decoder } = LYRA_V2.files;
  return LyraCodecEngine.create(ort, 'wasm', { encoder: file(encoder), quantizer: file(quantizer), decoder: file(decoder) });
}

/** Mono samples at 16 kHz from a WAV file, and the file's own rate. */
function readInput(path: string): { audio: Float32Array; rate: number } {
  const wav = parseWav(toArrayBuffer(readFileSync(path)), { mono: true });
  return { audio: resample(wav.samples, wav.sampleRate, SAMPLE_RATE), rate: wav.sampleRate };
}

async function encodeAll(engine: LyraCodecEngine, audio: Float32Array, numQuantizers: number): Promise<Uint8Array[]> {
  const frames = Math.ceil(audio.length / FRAME_SAMPLES);
  const packets: Uint8Array[] = [];
  for (let f = 0; f < frames; f++) {
    const frame = new Float32Array(FRAME_SAMPLES); // the last partial frame is zero-padded
    frame.set(audio.subarray(f * FRAME_SAMPLES, (f + 1) * FRAME_SAMPLES));
    packets.push(packPacket(await engine.encode(frame, numQuantizers), numQuantizers, f));
  }
  return packets;
}

async function decodeAll(engine: LyraCodecEngine, stream: Uint8Array): Promise<Float32Array> {
  const packets = unpackStream(stream);
  const out = new Float32Array(packets.length * FRAME_SAMPLES);
  for (const [k, p] of packets.entries()) out.set(await engine.decode(p.codes), k * FRAME_SAMPLES);
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
}

async function run(sub: string | undefined, args: string[]): Promise<void> {
  const { values: v, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: OPTIONS });
  if (sub === 'rates') {
    if (v.json) console.log(JSON.stringify(BITRATES));
    else
      for (const b of BITRATES)
        console.log(
          `${String(b.quantizers).padStart(2)} quantizers  ${String(b.bitsPerFrame).padStart(3)} bits/frame  ${b.kbps.toFixed(1).padStart(4)} kbps${b.reference ? '  (Lyra reference rate)' : ''}`,
        );
    return;
  }
  const [input, output] = positionals;
  if (input === undefined || output === undefined || positionals.length !== 2) usage(`codec ${sub ?? ''} needs <input> and <output>`);
  const threads = positiveInt(v.threads, 'threads');
  if (sub === 'encode') {
    const n = quantizersOf(v);
    const { audio } = readInput(input);
    const engine = await createEngine(v.models, threads, v.model);
    const packets = await encodeAll(engine, audio, n);
    writeFileSync(output, concat(packets));
    console.error(`${packets.length} frames at ${(n * 0.2).toFixed(1)} kbps (${n} quantizers) -> ${output}`);
    await engine.dispose();
  } else if (sub === 'decode') {
    const rate = positiveInt(v.rate, 'rate') ?? SAMPLE_RATE;
    const engine = await createEngine(v.models, threads, v.model);
    const pcm = await decodeAll(engine, new Uint8Array(readFileSync(input)));
    writeFileSync(output, new Uint8Array(writeWav(resample(pcm, SAMPLE_RATE, rate), rate)));
    console.error(`${pcm.length / FRAME_SAMPLES} frames -> ${output} (${rate} Hz)`);
    await engine.dispose();
  } else if (sub === 'roundtrip') {
    const n = quantizersOf(v);
    const { audio, rate } = readInput(input);
    const engine = await createEngine(v.models, threads, v.model);
    const t0 = performance.now();
    const packets = await encodeAll(engine, audio, n);
    const stream = concat(packets);
    const pcm = await decodeAll(engine, stream);
    const ms = performance.now() - t0;
    const outRate = v['keep-rate'] ? rate : SAMPLE_RATE;
    writeFileSync(output, new Uint8Array(writeWav(resample(pcm, SAMPLE_RATE, outRate), outRate)));
    const result = {
      outputRate: outRate,
      frames: packets.length,
      quantizers: n,
      kbps: n * 0.2,
      bytes: stream.length,
      logSpectralDistanceDb: logSpectralDistance(audio, pcm.subarray(0, audio.length)),
      realTimeFactor: ms / ((packets.length * FRAME_SAMPLES * 1000) / SAMPLE_RATE),
    };
    if (v.json) console.log(JSON.stringify(result));
    else
      console.error(
        `${result.frames} frames at ${result.kbps.toFixed(1)} kbps, ${result.bytes} bytes, LSD ${result.logSpectralDistanceDb.toFixed(2)} dB, ${result.realTimeFactor.toFixed(3)}x real time -> ${output}`,
      );
    await engine.dispose();
  } else {
    usage(`unknown codec command '${sub ?? ''}'`);
  }
}

/**
 * Runs `whittle codec <argv...>`; returns the exit code (0 ok, 2 usage or bad input, 1 other).
 * @example process.exitCode = await runCodecCommand(['roundtrip', 'in.wav', 'out.wav', '--kbps', '3.2']);
 */
export async function runCodecCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  try {
    if (sub === undefined || sub === 'help' || sub === '--help') console.log(CODEC_USAGE);
    else await run(sub, rest);
    return 0;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    const e =
      typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')
        ? new WhittleError('INVALID_ARGUMENT', `${(err as Error).message}\n${CODEC_USAGE}`)
        : asWhittleError(err);
    console.error(`whittle codec: ${e.code}: ${e.message}`);
    return e.code === 'INVALID_ARGUMENT' ? 2 : 1;
  }
}
