/**
 * AudioWorklet: plays 320-sample frames as they arrive, in order. It reports the audio-clock
 * time each frame starts playing (for measured end-to-end latency) and counts underruns
 * (output starved: silence, which the jitter buffer exists to prevent).
 */
declare const currentTime: number;
declare function registerProcessor(name: string, ctor: new () => unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

class PlaybackProcessor extends AudioWorkletProcessor {
  private queue: { id: number; pcm: Float32Array }[] = [];
  private offset = 0;
  private underruns = 0;

  constructor() {
    super();
    this.port.onmessage = (ev: MessageEvent<{ id: number; pcm: Float32Array }>) => this.queue.push(ev.data);
  }

  process(_inputs: Float32Array[][], outputs: Float32Array[][]): boolean {
    const out = outputs[0]?.[0];
    if (!out) return true;
    for (let i = 0; i < out.length; i++) {
      const head = this.queue[0];
      if (!head) {
        out[i] = 0;
        if (i === 0) this.underruns++;
        continue;
      }
      if (this.offset === 0) this.port.postMessage({ type: 'playing', id: head.id, at: currentTime + i / 16000, underruns: this.underruns });
      out[i] = head.pcm[this.offset++]!;
      if (this.offset === head.pcm.length) {
        this.queue.shift();
        this.offset = 0;
      }
    }
    return true;
  }
}

registerProcessor('whittle-playback', PlaybackProcessor);

export {}; // a module: its declarations stay local
