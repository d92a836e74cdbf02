/**
 * The conformance checks: Whittle's feature matrix on the device the page runs on. Each check
 * compares against a reference that is not the code under test on this backend:
 * - golden tokens: llama2.c run.c's greedy tokens for stories260K (an independent implementation);
 * - pruned plan and early exit: the plan must be the one asked for and change the output, and on
 *   WebGPU the tokens must equal WASM's for the same plan (WASM is what the golden check pins);
 * - self-speculation: greedy output with drafts from an early exit must equal full-depth greedy
 *   output token for token (the property speculation promises);
 * - codec round trip: the bitstream's size per rate (3 header bytes + the rate's quantizer bytes
 *   per 20 ms frame), frame-aligned finite output, and distance to the input falling as the rate rises;
 * - storage: the quota the origin has, whether storage is or can be made persistent, and the
 *   model store's backend (recorded; a missing estimate fails).
 *
 * @example
 * const checks = await runConformance({ modelsUrl: '/models/', backends: ['wasm'] });
 */
import {
  Whittle,
  logSpectralDistance,
  parseWav,
  probeCapabilities,
  type Backend,
  type Capabilities,
  type LlamaPlan,
  type TextModel,
} from '../index.ts';
import type { ConformanceCheck } from './report.ts';

/** run.c's greedy tokens for stories260K from BOS. */
const STORIES260K_GOLDEN = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426, 338, 401, 396, 267, 337];
const GREEDY = { temperature: 0, stopTokens: [] as number[] };
/** Bytes per 20 ms frame by rate: 3 header bytes + the rate's quantizer bytes (kbps * 20 ms / 8). */
const CODEC_RATES: { kbps: number; frameBytes: number }[] = [
  { kbps: 3.2, frameBytes: 3 + 8 },
  { kbps: 6, frameBytes: 3 + 15 },
  { kbps: 9.2, frameBytes: 3 + 23 },
];

/**
 * Where the models are and which backends to try.
 *
 * @example
 * const options: ConformanceOptions = { modelsUrl: '/models/', backends: ['webgpu', 'wasm'] };
 */
export interface ConformanceOptions {
  /** A folder with manifests.json, the registry models and lyra-testdata/ (as `npm run models` writes it). */
  modelsUrl: string;
  /** Backends to run the model checks on (each only where the device has it). */
  backends: Backend[];
  /** Called after each check (the page renders as it goes). */
  onCheck?: (check: ConformanceCheck) => void;
}

type Outcome = Omit<ConformanceCheck, 'id' | 'ms' | 'backend'>;

async function timed(id: string, backend: Backend | undefined, run: () => Promise<Outcome>): Promise<ConformanceCheck> {
  const t0 = performance.now();
  let outcome: Outcome;
  try {
    outcome = await run();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    outcome = { status: 'fail', reason: `${e.code ? `${e.code}: ` : ''}${e.message ?? String(err)}`, details: {} };
  }
  return { id, ...(backend ? { backend } : {}), ...outcome, ms: Math.round(performance.now() - t0) };
}

const fail = (reason: string, details: Record<string, unknown> = {}): Outcome => ({ status: 'fail', reason, details });
const pass = (details: Record<string, unknown>, reference?: string): Outcome => ({
  status: 'pass',
  ...(reference ? { reference } : {}),
  details,
});

function firstDifference(a: number[], b: number[]): number {
  const i = a.findIndex((x, k) => x !== b[k]);
  return i === -1 ? (a.length === b.length ? -1 : Math.min(a.length, b.length)) : i;
}

/** Why a backend cannot run here, or null. */
function missing(backend: Backend, caps: Capabilities): string | null {
  if (backend === 'webgpu' && !caps.webgpu.available) return 'this browser offers no WebGPU adapter';
  return null;
}

/** Runs every check; never throws (a check that throws is a `fail` with the error). */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceCheck[]> {
  const checks: ConformanceCheck[] = [];
  const add = (c: ConformanceCheck) => {
    checks.push(c);
    options.onCheck?.(c);
  };
  const base = new URL(options.modelsUrl, location.href).href;
  const manifestsUrl = new URL('manifests.json', base).href;
  let caps: Capabilities | null = null;
  add(
    await timed('probe', undefined, async () => {
      caps = await probeCapabilities();
      return pass({
        ...caps.webgpu,
        crossOriginIsolated: caps.crossOriginIsolated,
        hardwareConcurrency: caps.hardwareConcurrency,
        ...(caps.deviceMemoryGiB ? { deviceMemoryGiB: caps.deviceMemoryGiB } : {}),
      });
    }),
  );
  const found = caps as Capabilities | null;
  /** WASM's tokens per check, the reference for the other backends. */
  const wasmTokens = new Map<string, number[]>();
  // WASM first: it is the reference the WebGPU plan checks compare with.
  const order = [...options.backends].sort((a, b) => (a === 'wasm' ? -1 : b === 'wasm' ? 1 : 0));
  for (const backend of order) {
    const absent = found ? missing(backend, found) : 'the probe failed';
    if (absent) {
      for (const id of ['golden-tokens', 'pruned-plan', 'early-exit', 'self-speculation'])
        add({ id, backend, status: 'skip', reason: absent, ms: 0, details: {} });
      continue;
    }
    const w = await Whittle.create({ backend, manifestsUrl, storeName: 'whittle-conformance' });
    let lm: TextModel | null = null;
    add(
      await timed('golden-tokens', backend, async () => {
        lm = await w.text('stories260K', { backend });
        const done = await lm.complete([1], { ...GREEDY, maxTokens: 20 });
        const at = firstDifference(done.tokens, STORIES260K_GOLDEN);
        const details = {
          runtime: lm.info.runtime.backend,
          tokens: done.tokens,
          tokensPerSecond: done.stats.decodeTokensPerSecond,
          timeToFirstTokenMs: done.stats.timeToFirstTokenMs,
        };
        if (lm.info.runtime.backend !== backend) return fail(`asked for ${backend}, the model runs on ${lm.info.runtime.backend}`, details);
        return at === -1
          ? pass(details, 'llama2.c run.c greedy tokens')
          : fail(`token ${at} is ${done.tokens[at]}, run.c says ${STORIES260K_GOLDEN[at]}`, details);
      }),
    );
    const plans: [string, LlamaPlan, boolean][] = [
      ['pruned-plan', { layers: [0, 1, 3, 4] }, false],
      ['early-exit', { layers: [0, 1, 2, 3, 4], exit: 2 }, true],
    ];
    for (const [id, plan, exit] of plans) {
      add(
        await timed(id, backend, async () => {
          if (!lm) return { status: 'skip', reason: 'stories260K did not load (see golden-tokens)', details: {} };
          await lm.setPlan({ layers: [0, 1, 2, 3, 4] });
          const full = (await lm.complete([1], { ...GREEDY, maxTokens: 12 })).tokens;
          const info = await lm.setPlan(plan);
          const done = await lm.complete([1], { ...GREEDY, maxTokens: 12, ...(exit ? { exit: true } : {}) });
          await lm.setPlan({ layers: [0, 1, 2, 3, 4] });
          const details = { plan: info.plan, ranPlan: done.stats.plan, tokens: done.tokens };
          if (JSON.stringify(done.stats.plan.layers) !== JSON.stringify(plan.layers) || (exit && done.stats.plan.exit !== plan.exit))
            return fail(`ran ${JSON.stringify(done.stats.plan)}, asked for ${JSON.stringify(plan)}`, details);
          if (firstDifference(done.tokens, full) === -1) return fail("the output is the full model's: the plan had no effect", details);
          if (backend === 'wasm') {
            wasmTokens.set(id, done.tokens);
            return pass(details, "the plan that ran, and an output that differs from the full model's");
          }
          const ref = wasmTokens.get(id);
          if (!ref) return pass(details, 'the plan that ran (WASM was not run for comparison)');
          const at = firstDifference(done.tokens, ref);
          return at === -1
            ? pass(details, 'WASM on this device, same plan')
            : fail(`token ${at} is ${done.tokens[at]}, WASM says ${ref[at]}`, { ...details, wasm: ref });
        }),
      );
    }
    (lm as TextModel | null)?.dispose();
    add(
      await timed('self-speculation', backend, async () => {
        const ls = await w.text('stories-layerskip', { backend });
        try {
          const prompt = 'Once upon a time';
          const full = await ls.complete(prompt, { ...GREEDY, maxTokens: 16 });
          const spec = await ls.complete(prompt, { ...GREEDY, maxTokens: 16, speculate: { exit: 2, draft: 3 } });
          const s = spec.stats.speculation;
          const details = { full: full.tokens, speculated: spec.tokens, drafted: s?.drafted, accepted: s?.accepted };
          const at = firstDifference(spec.tokens, full.tokens);
          return at === -1
            ? pass(details, 'full-depth greedy output of the same model')
            : fail(`token ${at} is ${spec.tokens[at]}, full depth says ${full.tokens[at]}`, details);
        } finally {
          ls.dispose();
        }
      }),
    );
  }
  add(await timed('codec-round-trip', 'wasm', () => codecRoundTrip(base, manifestsUrl)));
  add(await timed('storage', undefined, storage));
  return checks;
}

async function codecRoundTrip(base: string, manifestsUrl: string): Promise<Outcome> {
  const res = await fetch(new URL('lyra-testdata/sample1_16kHz.wav', base));
  if (!res.ok) return { status: 'skip', reason: `no test speech at ${res.url} (HTTP ${res.status})`, details: {} };
  const wav = await res.arrayBuffer();
  const input = parseWav(wav, { mono: true }).samples;
  const w = await Whittle.create({ backend: 'wasm', manifestsUrl, storeName: 'whittle-conformance' });
  const codec = await w.codec('lyra-v2', { backend: 'wasm' });
  try {
    const frames = Math.ceil(input.length / 320);
    const rates: Record<string, unknown>[] = [];
    for (const { kbps, frameBytes } of CODEC_RATES) {
      const t0 = performance.now();
      const packets = await codec.encodeWav(wav, { kbps });
      const pcm = await codec.decode(packets);
      const wallMs = performance.now() - t0;
      const rate = {
        kbps,
        bytes: packets.length,
        expectedBytes: frames * frameBytes,
        samples: pcm.length,
        expectedSamples: frames * 320,
        finite: pcm.every(Number.isFinite),
        lsd: logSpectralDistance(input, pcm),
        realTimeFactor: wallMs / 1000 / (input.length / 16_000),
      };
      rates.push(rate);
      if (rate.bytes !== rate.expectedBytes)
        return fail(`${kbps} kbps: ${rate.bytes} bytes, the bitstream format says ${rate.expectedBytes}`, { rates });
      if (rate.samples !== rate.expectedSamples || !rate.finite)
        return fail(`${kbps} kbps: ${rate.samples} samples (expected ${rate.expectedSamples}), finite ${rate.finite}`, { rates });
    }
    const lsd = rates.map((r) => r.lsd as number);
    if (!(lsd[0]! > lsd[1]! && lsd[1]! > lsd[2]!))
      return fail(`distance to the input does not fall as the rate rises: ${lsd.map((d) => d.toFixed(3)).join(', ')}`, { rates });
    return pass({ rates }, 'bitstream sizes per rate; distance to the input speech falling with rate');
  } finally {
    codec.dispose();
  }
}

async function storage(): Promise<Outcome> {
  const s = navigator.storage;
  if (!s?.estimate) return fail('navigator.storage.estimate is missing: the model store cannot check quota');
  const persistedBefore = (await s.persisted?.()) ?? false;
  const persistGranted = persistedBefore || ((await s.persist?.().catch(() => false)) ?? false);
  const { quota, usage } = await s.estimate();
  const hasOpfs = typeof s.getDirectory === 'function';
  const w = await Whittle.create({ storeName: 'whittle-conformance' });
  const details = {
    quota: quota ?? null,
    usage: usage ?? null,
    persistedBefore,
    persistGranted,
    opfs: hasOpfs,
    storeBackend: w.store.backend,
  };
  if (!(quota !== undefined && quota > 0)) return fail('the browser reports no storage quota', details);
  return pass(details);
}
