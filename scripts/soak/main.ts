/**
 * `npm run soak -- [--json] [--short] [--generations N] [--sample-every K] [--minutes M]
 *  [--hog-minutes H] [--hog-threads T] [--sample-seconds S] [--model id] [--backend wasm|webgpu] [--threads 1] [--port P]
 *  [--link-jitter-ms J] [--jitter-buffer adaptive|fixed] [--codec-frames F]`
 *
 * Long runs in headless Chromium (run.ts): N text generations with plan switches, speculation
 * and aborts, then M minutes of live codec streaming with bitrate switches and loss, and H more
 * with a CPU-hog tab. Progress goes to stderr; the last line of stdout is one JSON object.
 * Exit status 1 when an untyped error, a wrong answer or memory growth beyond noise was seen.
 * Defaults: 1000 generations, 10 + 2 minutes; `--short` is the CI run (scripts/soak/soak.test.ts).
 * The codec's link has 0..J ms of jitter (default 10); `--jitter-buffer fixed` runs the network
 * jitter buffer at a fixed 3 frames, the peer of the adaptive default.
 *
 * `--backend webgpu [--codec-frames F]`: the text mix on WebGPU (SwiftShader here: 72 generations,
 * a plan switch every 12) and F frames (default 600) of the codec's streaming encoder and decoder in
 * place of the live session, the workers' live GPU buffers sampled (`gpuBuffers` in the JSON);
 * `--short` is a quick check (a few minutes on SwiftShader, most of it compiling shaders; not in CI).
 * Exit status 1 also when a decoded sample was not finite.
 */
import { parseArgs } from 'node:util';
import { runSoak, soakDefaults } from './run.ts';

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    short: { type: 'boolean', default: false },
    generations: { type: 'string' },
    'sample-every': { type: 'string' },
    minutes: { type: 'string' },
    'hog-minutes': { type: 'string' },
    'hog-threads': { type: 'string' },
    'sample-seconds': { type: 'string' },
    model: { type: 'string' },
    backend: { type: 'string' },
    threads: { type: 'string' },
    port: { type: 'string', default: '0' },
    'link-jitter-ms': { type: 'string' },
    'jitter-buffer': { type: 'string' },
    'codec-frames': { type: 'string' },
  },
});
const number = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const backend = values.backend ?? 'wasm';
if (backend !== 'wasm' && backend !== 'webgpu') throw new Error(`--backend must be wasm or webgpu, not ${backend}`);
const base = soakDefaults(backend, values.short);
const jitterBuffer = values['jitter-buffer'] ?? 'adaptive';
if (jitterBuffer !== 'adaptive' && jitterBuffer !== 'fixed') throw new Error(`--jitter-buffer must be adaptive or fixed, not ${jitterBuffer}`);
const result = await runSoak({
  ...base,
  backend,
  model: values.model ?? base.model,
  generations: number(values.generations, base.generations),
  sampleEvery: number(values['sample-every'], base.sampleEvery),
  minutes: number(values.minutes, base.minutes),
  hogMinutes: number(values['hog-minutes'], base.hogMinutes),
  hogThreads: number(values['hog-threads'], base.hogThreads),
  threads: number(values.threads, base.threads),
  sampleSeconds: number(values['sample-seconds'], base.sampleSeconds),
  linkJitterMs: number(values['link-jitter-ms'], 10),
  jitterBuffer,
  codecFrames: number(values['codec-frames'], base.codecFrames),
  codecSampleEvery: base.codecSampleEvery,
  port: Number(values.port),
  log: (line) => console.error(`[soak] ${line}`),
});
console.log(values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
const s = result.summary;
process.exit(s.untypedErrors === 0 && s.wrongAnswers === 0 && s.nonFinite === 0 && s.flat ? 0 : 1);
