/** Live codec demo: clip or microphone through Whittle's Lyra v2 over a simulated network. */
import { LiveSession, Whittle, WhittleError, type BackendPreference, type Codec, type LiveStats } from 'whittle';
import { opusRoundTrip, bestLag } from '../shared/opus.ts';
import { drawSpectrogram, drawWaves } from './draw.ts';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);

let codec: Codec | null = null;
let context: AudioContext | null = null;
let live: LiveSession | null = null;
let original: Float32Array | null = null;
let micStream: MediaStream | null = null;
/** Every measured capture-to-playback latency of the current run, ms (for the e2e report; a demo run is short). */
let latencies: number[] = [];

function linkSettings() {
  return {
    kbps: Number(input('bandwidth').value),
    loss: Number(input('loss').value),
    burstiness: input('bursty').checked ? 0.7 : 0,
    delayMs: Number(input('delay').value),
  };
}

function renderLabels(): void {
  const k = Number(input('kbps').value);
  $('kbps-label').textContent = `${k.toFixed(1)} kbps (${Math.round(k / 0.2)} quantizers)`;
  $('bandwidth-label').textContent = `${input('bandwidth').value} kbps`;
  $('loss-label').textContent = `${Math.round(Number(input('loss').value) * 100)}%`;
  $('delay-label').textContent = `${input('delay').value} ms`;
}

function renderStats(s: LiveStats): void {
  const rows: [string, string][] = [
    ['bitrate', `${s.kbps.toFixed(1)} kbps${s.auto ? ' (auto)' : ''}`],
    ['packets', `${s.packetsSent} sent · ${s.packetsDropped} lost · ${s.late} late · ${s.concealed} concealed`],
    ['jitter buffer', `${s.jitter.targetFrames} frames beyond the base transit (adaptive) · plays ${s.jitter.delayMs} ms after sending · measured jitter ${s.jitter.jitterMs.toFixed(1)} ms · grew ${s.jitter.grew}, shrank ${s.jitter.shrank}`],
    ['on the wire', `${((s.bytesSent * 8) / Math.max(1, s.packetsSent * 20)).toFixed(2)} kbps average (3-byte header per packet)`],
    ['latency', `algorithmic ${s.algorithmicLatencyMs} ms (one frame, no look-ahead) · configured ${s.configuredLatencyMs.toFixed(0)} ms · measured ${s.measuredLatencyMs === null ? '—' : `${s.measuredLatencyMs.toFixed(0)} ms`}`],
    ['worker', `${s.engineMsPerFrame.toFixed(1)} ms per 20 ms frame (encode + decode; ${s.stageMs.worker.toFixed(1)} ms in the engine) · ${s.skipped} frames skipped behind real time`],
    ['playback', s.playout ? `buffer ${s.playout.targetFrames} frames (target) · ${s.underruns} underruns (${s.playout.concealed} slots concealed) · ${s.playout.dropped} frames dropped to win latency back` : '—'],
  ];
  $('stats').replaceChildren(...rows.flatMap(([k, v]) => [Object.assign(document.createElement('dt'), { textContent: k }), Object.assign(document.createElement('dd'), { textContent: v })]));
  $('switches').replaceChildren(...s.switches.map((w) => Object.assign(document.createElement('li'), { textContent: `frame ${w.frame}: ${w.kbps.toFixed(1)} kbps (${w.reason})` })));
  if (!input('auto').checked) return;
  input('kbps').value = String(s.kbps);
  renderLabels();
}

function concat(frames: Float32Array[]): Float32Array {
  const out = new Float32Array(frames.reduce((n, f) => n + f.length, 0));
  let p = 0;
  for (const f of frames) {
    out.set(f, p);
    p += f.length;
  }
  return out;
}

async function start(): Promise<void> {
  $<HTMLButtonElement>('start').disabled = true;
  $('state').textContent = 'loading the codec into a worker…';
  try {
    codec ??= await (await Whittle.create({ backend: (new URLSearchParams(location.search).get('backend') as BackendPreference | null) ?? 'wasm' })).codec('lyra-v2');
    context ??= new AudioContext({ sampleRate: 16000 });
    await context.resume();
    const source = $<HTMLSelectElement>('source').value;
    let node: AudioNode;
    let maxFrames: number | undefined;
    if (source === 'mic') {
      micStream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1, echoCancellation: true } });
      node = context.createMediaStreamSource(micStream);
      original = null;
    } else {
      const buffer = await context.decodeAudioData(await (await fetch(`/models/lyra-testdata/${source}`)).arrayBuffer());
      original = buffer.getChannelData(0).slice();
      const player = context.createBufferSource();
      player.buffer = buffer;
      node = player;
      maxFrames = Math.ceil(buffer.length / 320);
    }
    live = await LiveSession.create(context, codec, {
      link: { ...linkSettings(), jitterMs: 10, seed: 1 },
      jitterFrames: Number(input('jitter').value),
      kbps: Number(input('kbps').value),
      auto: input('auto').checked,
      keepDecoded: true, // the waveform, spectrogram and A/B playback read it (a demo session is short)
      ...(maxFrames !== undefined ? { maxFrames } : {}),
    });
    let lastDraw = 0;
    latencies = [];
    live.onStats = (st) => {
      if (st.measuredLatencyMs !== null && st.measuredLatencyMs !== latencies.at(-1)) latencies.push(st.measuredLatencyMs);
      renderStats(st);
      // The waveform follows the stream (cheap); the spectrogram is drawn once at the end.
      if (performance.now() - lastDraw > 500 && live) {
        lastDraw = performance.now();
        drawWaves($<HTMLCanvasElement>('wave'), original, concat(live.decoded));
      }
    };
    node.connect(live.input);
    live.output.connect(context.destination);
    if (node instanceof AudioBufferSourceNode) node.start();
    $<HTMLButtonElement>('stop').disabled = false;
    $('state').textContent = 'streaming';
    (window as unknown as { liveDemo: unknown }).liveDemo = { live, analysis };
    if (maxFrames !== undefined) {
      const session = live;
      await new Promise<void>((resolve) => {
        const check = () => (session.stats.done ? resolve() : setTimeout(check, 100));
        check();
      });
      finish();
    }
  } catch (e) {
    $('state').textContent = e instanceof WhittleError ? `${e.code}: ${e.message}` : String(e);
    $<HTMLButtonElement>('start').disabled = false;
  }
}

function finish(): void {
  if (!live) return;
  live.stop();
  micStream?.getTracks().forEach((t) => t.stop());
  micStream = null;
  const decoded = concat(live.decoded);
  $('state').textContent = `done: ${live.decoded.length} frames played`;
  drawWaves($<HTMLCanvasElement>('wave'), original, decoded);
  drawSpectrogram($<HTMLCanvasElement>('spectrogram'), decoded);
  $<HTMLButtonElement>('start').disabled = false;
  $<HTMLButtonElement>('stop').disabled = true;
  $<HTMLButtonElement>('play-whittle').disabled = false;
  $<HTMLButtonElement>('play-original').disabled = original === null;
  $<HTMLButtonElement>('play-opus').disabled = original === null;
}

/** For tests and the curious: length, NaNs, and the largest sample step at switch points vs elsewhere. */
function analysis() {
  if (!live) return null;
  const decoded = concat(live.decoded);
  const q = live.playedQuantizers;
  const boundaries: number[] = [];
  // Between two decoded frames only (0 = concealed, -1 = skipped behind real time).
  for (let f = 1; f < q.length; f++) if (q[f] !== q[f - 1] && q[f]! > 0 && q[f - 1]! > 0) boundaries.push(f * 320);
  const step = (i: number) => Math.abs(decoded[i]! - decoded[i - 1]!);
  let atSwitch = 0;
  for (const b of boundaries) for (let i = Math.max(1, b - 2); i < Math.min(decoded.length, b + 3); i++) atSwitch = Math.max(atSwitch, step(i));
  const steps: number[] = [];
  for (let i = 1; i < decoded.length; i++) steps.push(step(i));
  steps.sort((a, b) => a - b);
  return {
    samples: decoded.length,
    frames: live.decoded.length,
    nans: decoded.filter((x) => !Number.isFinite(x)).length,
    switchBoundaries: boundaries.length,
    maxStepAtSwitch: atSwitch,
    p999Step: steps[Math.floor(steps.length * 0.999)] ?? 0,
    maxStep: steps.at(-1) ?? 0,
    latencies,
    stats: live.stats,
  };
}

async function play(samples: Float32Array): Promise<void> {
  context ??= new AudioContext({ sampleRate: 16000 });
  const buffer = context.createBuffer(1, samples.length, 16000);
  buffer.copyToChannel(samples as Float32Array<ArrayBuffer>, 0);
  const src = context.createBufferSource();
  src.buffer = buffer;
  src.connect(context.destination);
  src.start();
}

$('start').addEventListener('click', () => void start());
$('stop').addEventListener('click', finish);
$('kbps').addEventListener('input', () => {
  renderLabels();
  if (live && !input('auto').checked) live.setBitrate(Number(input('kbps').value));
});
$('auto').addEventListener('change', () => live?.setAuto(input('auto').checked));
for (const id of ['bandwidth', 'loss', 'bursty', 'delay']) {
  $(id).addEventListener('input', () => {
    renderLabels();
    live?.setLink(linkSettings());
  });
}
$('jitter').addEventListener('change', () => live?.setJitterFrames(Number(input('jitter').value)));
$('play-original').addEventListener('click', () => original && void play(original));
$('play-whittle').addEventListener('click', () => live && void play(concat(live.decoded)));
$('play-opus').addEventListener('click', async () => {
  if (!original) return;
  const kbps = Number(input('kbps').value);
  try {
    const r = await opusRoundTrip(original, kbps);
    $('ab-info').textContent = `Opus asked for ${kbps} kbps, produced ${r.actualKbps.toFixed(2)} kbps`;
    await play(r.decoded.subarray(bestLag(original, r.decoded)));
  } catch (e) {
    $('ab-info').textContent = `Opus: ${String(e)} (libopus' lowest rate is 6 kbps)`;
  }
});
renderLabels();
