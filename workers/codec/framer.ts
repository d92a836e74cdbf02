/**
 * Cuts a stream of arbitrary-length sample blocks (AudioWorklet quanta of 128, file chunks...)
 * into the fixed 320-sample frames the codec takes. Pure, no DOM.
 *
 * @example
 * const framer = new Framer();
 * for (const frame of framer.push(block)) packets.push(await codec.encode(frame, 30));
 */
import { FRAME_SAMPLES } from '../../models/codec/bitrates.ts';

export class Framer {
  private readonly pending: Float32Array;
  private fill = 0;

  constructor(readonly frameSize = FRAME_SAMPLES) {
    this.pending = new Float32Array(frameSize);
  }

  /** Appends samples; returns every frame completed by them (fresh arrays, safe to transfer). */
  push(samples: Float32Array): Float32Array[] {
    const frames: Float32Array[] = [];
    let p = 0;
    while (p < samples.length) {
      const take = Math.min(this.frameSize - this.fill, samples.length - p);
      this.pending.set(samples.subarray(p, p + take), this.fill);
      this.fill += take;
      p += take;
      if (this.fill === this.frameSize) {
        frames.push(this.pending.slice());
        this.fill = 0;
      }
    }
    return frames;
  }

  /** Samples waiting for a full frame. */
  get buffered(): number {
    return this.fill;
  }

  /** The remainder zero-padded to a frame (end of stream), or null if nothing is pending. */
  flush(): Float32Array | null {
    if (this.fill === 0) return null;
    const frame = new Float32Array(this.frameSize);
    frame.set(this.pending.subarray(0, this.fill));
    this.fill = 0;
    return frame;
  }

  reset(): void {
    this.fill = 0;
  }
}
