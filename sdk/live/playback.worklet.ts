/**
 * AudioWorklet: the audio clock's end of the live pipeline. Decoded frames queue in a
 * PlayoutBuffer (playout.ts: adaptive depth, concealment on underrun, latency won back by
 * dropping what a stall piled up), which leaves one frame every 20 ms of audio whatever the main
 * thread is doing. It reports the audio-clock time each frame starts playing (for measured
 * end-to-end latency) with the buffer's counters.
 */
import { PlayoutBuffer, type PlayoutOptions } from './playout.ts';

declare const currentTime: number;
declare const sampleRate: number;
declare function registerProcessor(name: string, ctor: new (options?: { processorOptions?: PlayoutOptions }) => unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

class PlaybackProcessor extends AudioWorkletProcessor {
  private readonly playout: PlayoutBuffer;
  private reported = -1;

  constructor(options?: { processorOptions?: PlayoutOptions }) {
    super();
    this.playout = new PlayoutBuffer(options?.processorOptions ?? {});
    this.port.onmessage = (ev: MessageEvent<{ id: number; pcm: Float32Array } | { end: true }>) => {
      if ('end' in ev.data) this.playout.end();
      else this.playout.push(ev.data.id, ev.data.pcm);
    };
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0]?.[0];
    if (!out) return true;
    const before = this.playout.stats.concealed + this.playout.stats.dropped;
    const starts = this.playout.render(out);
    for (const s of starts) this.port.postMessage({ type: 'playing', id: s.id, at: currentTime + s.offset / sampleRate, stats: this.playout.stats });
    // Concealed slots and drops are news even when no frame started (a long underrun).
    // So is the last frame finishing (the counters then say where every frame went).
    const s = this.playout.stats;
    const drained = s.depth === 0 && s.played + s.dropped === s.received && this.reported !== s.received;
    if ((starts.length === 0 && s.concealed + s.dropped !== before) || drained) {
      this.reported = s.received;
      this.port.postMessage({ type: 'stats', stats: s });
    }
    return true;
  }
}

registerProcessor('whittle-playback', PlaybackProcessor);

export {}; // a module: its declarations stay local
