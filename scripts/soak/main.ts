/**
 * `npm run soak -- [--json] [--short] [--generations N] [--sample-every K] [--minutes M]
 *  [--hog-minutes H] [--hog-threads T] [--sample-seconds S] [--model id] [--backend wasm|webgpu] [--threads 1] [--port P]`
 *
 * Long runs in headless Chromium (run.ts): N text generations with plan switches, speculation
 * and aborts, then M minutes of live codec streaming with bitrate switches and loss, and H more
 * with a CPU-hog tab. Progress goes to stderr; the last line of stdout is one JSON object.
 * Exit status 1 when an untyped error, a wrong answer or memory growth beyond noise was seen.
 * Defaults: 1000 generations, 10 + 2 minutes; `--short` is the CI run (scripts/soak/soak.test.ts).
 */
import { parseArgs } from 'node:util';
import { LONG, SHORT, runSoak } from './run.ts';

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
  },
});
const base = values.short ? SHORT : LONG;
const number = (v: string | undefined, fallback: number) => (v === undefined ? fallback : Number(v));
const backend = values.backend ?? base.backend;
if (backend !== 'wasm' && backend !== 'webgpu') throw new Error(`--backend must be wasm or webgpu, not ${backend}`);
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
  port: Number(values.port),
  log: (line) => console.error(`[soak] ${line}`),
});
console.log(values.json ? JSON.stringify(result) : JSON.stringify(result, null, 2));
const s = result.summary;
process.exit(s.untypedErrors === 0 && s.wrongAnswers === 0 && s.flat ? 0 : 1);
