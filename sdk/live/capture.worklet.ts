/**
 * AudioWorklet: cuts the input into 320-sample frames (20 ms at the 16 kHz context rate) and
 * transfers each to the main thread with the audio-clock time its last sample was captured.
 */
declare const currentTime: number;
declare function registerProcessor(name: string, ctor: new () => unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

const FRAME = 320;

class CaptureProcessor extends AudioWorkletProcessor {
  private frame = new Float32Array(FRAME);
  private fill = 0;
  private index = 0;

  private readonly silence = new Float32Array(128);

  process(inputs: Float32Array[][]): boolean {
    // A finished or disconnected source has no channels: time still passes, as silence.
    const channel = inputs[0]?.[0] ?? this.silence;
    for (let i = 0; i < channel.length; i++) {
      this.frame[this.fill++] = channel[i]!;
      if (this.fill === FRAME) {
        const at = currentTime + (i + 1 - channel.length) / 16000;
        this.port.postMessage({ index: this.index++, at, pcm: this.frame }, [this.frame.buffer]);
        this.frame = new Float32Array(FRAME);
        this.fill = 0;
      }
    }
    return true;
  }
}

registerProcessor('whittle-capture', CaptureProcessor);

export {}; // a module: its declarations stay local
