/**
 * Playout jitter buffer: packets arrive out of order and late; playout takes one frame every
 * 20 ms, `targetFrames` behind the newest frame index seen. A frame that has not arrived when
 * its turn comes is reported missing (the decoder conceals it); one that arrives after its turn
 * is counted late and discarded. Frame indices are the 16-bit ones from the packet header.
 */

/**
 * One playout tick of a {@link JitterBuffer}: the frame's packet, or `null` with why it is
 * missing (the decoder conceals it).
 *
 * @example
 * const slot: Playout<Uint8Array> | null = jitter.pop();
 * const pcm = slot?.packet ? (await decoder.decode(slot.packet)).pcm : await decoder.conceal();
 */
export type Playout<T> = { frame: number; packet: T } | { frame: number; packet: null; reason: 'lost' | 'late' };

/**
 * Reorders packets by frame index and releases one per tick, `targetFrames` behind the newest.
 *
 * @example
 * const jitter = new JitterBuffer<Uint8Array>(3);
 * for (const d of link.receive(now)) jitter.push((d.packet[1]! << 8) | d.packet[2]!, d.packet); // header frame index
 * const slot = jitter.pop(); // every 20 ms
 */
export class JitterBuffer<T> {
  private readonly packets = new Map<number, T>();
  private next: number | null = null; // next frame index (unwrapped) to play
  private newest = -1;
  /** Packets that arrived after their turn (discarded). */
  late = 0;
  /** Ticks that had no packet to play. */
  concealed = 0;

  constructor(private targetFrames = 3) {}

  /** Changes the playout delay, in frames (at least 1). */
  setTarget(frames: number): void {
    this.targetFrames = Math.max(1, Math.round(frames));
  }

  /** Unwraps a 16-bit header index to the one nearest the newest seen. */
  private unwrap(index16: number): number {
    if (this.newest < 0) return index16;
    const base = this.newest - (this.newest & 0xffff);
    let candidate = base + index16;
    if (candidate - this.newest > 0x8000) candidate -= 0x10000;
    else if (this.newest - candidate > 0x8000) candidate += 0x10000;
    return candidate;
  }

  /** Adds a packet under its 16-bit header frame index; a packet whose turn has passed counts as late. */
  push(frameIndex16: number, packet: T): void {
    const frame = this.unwrap(frameIndex16);
    if (this.next !== null && frame < this.next) {
      this.late++;
      return;
    }
    this.packets.set(frame, packet);
    this.newest = Math.max(this.newest, frame);
  }

  /** One playout tick: the next frame's packet, or null with the reason. Null before playout starts. */
  pop(): Playout<T> | null {
    if (this.next === null) {
      if (this.newest < 0 || this.packets.size < this.targetFrames) return null; // pre-buffering
      this.next = Math.min(...this.packets.keys());
    }
    const frame = this.next;
    this.next++;
    const packet = this.packets.get(frame);
    this.packets.delete(frame);
    if (packet !== undefined) return { frame, packet };
    this.concealed++;
    return { frame, packet: null, reason: frame > this.newest ? 'late' : 'lost' };
  }
}
