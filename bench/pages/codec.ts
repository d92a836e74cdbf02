/**
 * Codec benchmark, all in one Chromium page so the peers share the machine's state:
 * - Whittle (Lyra v2 as ONNX, in its worker) on WASM with ONE thread, and on WebGPU;
 * - the TFLite reference (tfjs-tflite's TFLite/XNNPACK WASM, one thread) on the same frames;
 * - Opus via WebCodecs at the same bitrates.
 * Speed as real-time factors (seconds of audio per second of compute, higher is better);
 * quality as log-spectral distance to the input (dB, lower is better; workers/codec/metrics.ts).
 */
import { Whittle, logSpectralDistance, parseWav } from 'whittle';
import { swapSubgraphs } from '../../models/import/tflite/oracle/swap.ts';
import { TfliteReference } from './tflite-reference.ts';
import { bestLag, opusRoundTrip } from '../../demos/shared/opus.ts';
import { log, report } from './page.ts';

const quick = new URLSearchParams(location.search).has('quick');
const RATES = [3.2, 6, 9.2];
const FRAME = 320;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number, d = 3) => Math.round(x * 10 ** d) / 10 ** d;

async function bytes(path: string): Promise<ArrayBuffer> {
  const res = await fetch(path);
  if (!res.ok) throw new Error(`${path}: HTTP ${res.status} (run npm run models)`);
  return res.arrayBuffer();
}

type RateResult = { encode_rtf: number; decode_rtf: number; ms_per_frame: number; lsd: number; bytes_per_s: number };

/** Encode + decode every clip at one rate through the SDK, timed. */
async function measureRate(codec: Awaited<ReturnType<Whittle['codec']>>, clips: Float32Array[], kbps: number): Promise<RateResult> {
  let audioS = 0;
  let encMs = 0;
  let decMs = 0;
  let lsd = 0;
  let bytesTotal = 0;
  for (const pcm of clips) {
    let t = performance.now();
    const packets = await codec.encode(pcm, { kbps });
    encMs += performance.now() - t;
    t = performance.now();
    const out = await codec.decode(packets);
    decMs += performance.now() - t;
    audioS += pcm.length / 16000;
    bytesTotal += packets.length;
    lsd += logSpectralDistance(pcm, out) / clips.length;
  }
  return { encode_rtf: round(audioS / (encMs / 1000), 2), decode_rtf: round(audioS / (decMs / 1000), 2), ms_per_frame: round((encMs + decMs) / (audioS * 50)), lsd: round(lsd), bytes_per_s: round(bytesTotal / audioS, 1) };
}

async function whittleRun(backend: 'wasm' | 'webgpu', clips: Float32Array[], threads = 1) {
  const w = await Whittle.create({ backend, maxThreads: threads, storeName: `bench-${backend}-${threads}` });
  const codec = await w.codec('lyra-v2');
  // Two passes over all rates, the first unmeasured, like the TFLite reference's two passes: V8
  // tiers the onnxruntime WASM up lazily and on this loaded machine a 1 s (or even a full-clip)
  // warm-up still left the first measured rate 3-4x slower than the next ones.
  // (SwiftShader WebGPU is ~40x slower than that and gets one rate of warm-up only.)
  for (const kbps of backend === 'wasm' ? RATES : RATES.slice(0, 1)) await measureRate(codec, clips, kbps);
  const perRate: Record<string, RateResult> = {};
  for (const kbps of RATES) {
    perRate[kbps] = await measureRate(codec, clips, kbps);
    log(`whittle ${backend} ${kbps} kbps: ${JSON.stringify(perRate[kbps])}`);
  }
  const info = codec.info;
  codec.dispose();
  return { perRate, runtime: info.runtime, nodeCounts: info.nodeCounts };
}

async function tfliteRun(clip: Float32Array, n: number) {
  const enc = await TfliteReference.create(new Uint8Array(await bytes('/models/lyra-v2/soundstream_encoder.tflite')));
  const q = new Uint8Array(await bytes('/models/lyra-v2/quantizer.tflite'));
  const qEnc = await TfliteReference.create(swapSubgraphs(q, 0, 1));
  const qDec = await TfliteReference.create(q);
  const dec = await TfliteReference.create(new Uint8Array(await bytes('/models/lyra-v2/lyragan.tflite')));
  const t: Record<'encoder' | 'quantizer_encode' | 'quantizer_decode' | 'decoder', number[]> = { encoder: [], quantizer_encode: [], quantizer_decode: [], decoder: [] };
  const frames = Math.floor(clip.length / FRAME);
  for (let pass = 0; pass < 2; pass++) {
    // pass 0 warms up; pass 1 is measured
    for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] = [];
    for (let f = 0; f < frames; f++) {
      let t0 = performance.now();
      const [features] = enc.run([clip.slice(f * FRAME, (f + 1) * FRAME)]);
      t.encoder.push(performance.now() - t0);
      t0 = performance.now();
      const outs = qEnc.run({ input_frames: features as Float32Array, num_quantizers: Int32Array.of(n) });
      t.quantizer_encode.push(performance.now() - t0);
      const codes = outs.find((o) => o instanceof Int32Array && o.length === 46) as Int32Array;
      t0 = performance.now();
      const [feats] = qDec.run([codes]);
      t.quantizer_decode.push(performance.now() - t0);
      t0 = performance.now();
      dec.run([feats as Float32Array]);
      t.decoder.push(performance.now() - t0);
    }
  }
  const med = Object.fromEntries(Object.entries(t).map(([k, v]) => [`${k}_ms`, round(median(v))]));
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const total = mean(t.encoder) + mean(t.quantizer_encode) + mean(t.quantizer_decode) + mean(t.decoder);
  return { ...med, ms_per_frame: round(total), rtf: round(20 / total, 2), frames };
}

async function main() {
  const clips = await Promise.all(['sample1_16kHz.wav', 'sample2_16kHz.wav'].map(async (c) => parseWav(await bytes(`/models/lyra-testdata/${c}`), { mono: true, sampleRate: 16000 }).samples));
  const usable = quick ? [clips[0]!.subarray(0, 100 * FRAME)] : clips;
  log(`clips: ${usable.map((c) => (c.length / 16000).toFixed(2)).join(', ')} s`);

  log('TFLite reference (one WASM thread, XNNPACK)…');
  const tflite = await tfliteRun(usable[0]!, 30);
  log(`tflite: ${JSON.stringify(tflite)}`);

  log('Whittle on WASM (one thread)…');
  const wasm = await whittleRun('wasm', usable);
  // Threads need cross-origin isolation (the dev server sends COOP/COEP) and more than one core.
  const threads = crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency) : 1;
  const wasmThreads = threads > 1 ? await whittleRun('wasm', usable, threads) : null;
  // The reference again right after: on a shared machine the load drifts over minutes, so the
  // bracketed ratio (vs the mean of both reference runs) is the one to trust.
  const tfliteAfter = await tfliteRun(usable[0]!, 30);
  log(`tflite after whittle: ${JSON.stringify(tfliteAfter)}`);
  const tfliteMean = (tflite.ms_per_frame + tfliteAfter.ms_per_frame) / 2;
  const hasGpu = !!(navigator as Navigator & { gpu?: GPU }).gpu && !!(await (navigator as Navigator & { gpu: GPU }).gpu.requestAdapter());
  // SwiftShader emulates the GPU on the CPU: a short clip is enough to know where WebGPU stands.
  // WASM runs that excerpt too: LSD depends on the audio, so only the same excerpt compares
  // (WebGPU's 6.2-6.7 dB on the excerpt against WASM's 6.8-7.2 on both whole clips was the audio).
  const gpuExcerpt = usable[0]!.subarray(0, 100 * FRAME);
  const webgpu = hasGpu ? await whittleRun('webgpu', [gpuExcerpt]) : null;
  const wasmOnGpuExcerpt = hasGpu ? await whittleRun('wasm', [gpuExcerpt]) : null;

  const opus: Record<string, { requested_kbps: number; actual_kbps: number; lsd: number; encode_rtf: number; decode_rtf: number; lag: number } | { error: string }> = {};
  for (const kbps of [...RATES, 12]) {
    try {
      let lsd = 0;
      let actual = 0;
      let encMs = 0;
      let decMs = 0;
      let audioS = 0;
      let lag = 0;
      for (const pcm of usable) {
        const r = await opusRoundTrip(pcm, kbps);
        lag = bestLag(pcm, r.decoded);
        lsd += logSpectralDistance(pcm, r.decoded.subarray(lag)) / usable.length;
        actual += r.actualKbps / usable.length;
        encMs += r.encodeMs;
        decMs += r.decodeMs;
        audioS += pcm.length / 16000;
      }
      opus[kbps] = { requested_kbps: kbps, actual_kbps: round(actual, 2), lsd: round(lsd), encode_rtf: round(audioS / (encMs / 1000), 1), decode_rtf: round(audioS / (decMs / 1000), 1), lag };
    } catch (e) {
      opus[kbps] = { error: String(e) };
    }
    log(`opus ${kbps}: ${JSON.stringify(opus[kbps])}`);
  }

  const rates = RATES.map((kbps) => ({
    kbps,
    whittle: {
      wasm_1_thread: wasm.perRate[kbps],
      wasm_threads: wasmThreads?.perRate[kbps] ?? null,
      webgpu: webgpu?.perRate[kbps] ?? null,
      wasm_1_thread_on_webgpu_excerpt: wasmOnGpuExcerpt?.perRate[kbps] ?? null,
    },
    opus: opus[kbps],
  }));
  const w6 = wasm.perRate[6]!;
  return {
    benchmark: 'codec',
    quick,
    metric: 'log-spectral distance to the input, dB (lower is better)',
    audio_seconds: usable.reduce((s, c) => s + c.length / 16000, 0),
    reference_tflite_wasm_1_thread: tflite,
    rates,
    opus_12kbps: opus[12],
    whittle_runtime: { wasm: wasm.runtime, wasm_threads: wasmThreads?.runtime ?? null, webgpu: webgpu?.runtime ?? null, nodeCounts: wasm.nodeCounts },
    speedup_vs_tflite_at_6kbps: round(tflite.ms_per_frame / w6.ms_per_frame, 2),
    speedup_vs_tflite_per_rate: RATES.map((kbps) => round(tflite.ms_per_frame / wasm.perRate[kbps]!.ms_per_frame, 2)),
    reference_tflite_after_whittle: tfliteAfter,
    speedup_vs_tflite_bracketed_per_rate: RATES.map((kbps) => round(tfliteMean / wasm.perRate[kbps]!.ms_per_frame, 2)),
  };
}

report(main);
