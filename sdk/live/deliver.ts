/**
 * Hands what crossed the simulated link to the network jitter buffer: the live session and
 * jitter-sim.ts (its network half, for tests and bench/jitter-sim.ts) both deliver through here,
 * so the simulation measures the session's own receive path.
 *
 * With each packet goes the headroom its size leaves: how much less time the link's bottleneck
 * took to carry it than the codec's largest packet (MAX_PACKET_BYTES, 9.2 kbps) would have taken.
 * The jitter buffer sizes its delay for the largest packet, so a switch to a higher bitrate, which
 * makes every transit longer on a slow link, is not taken for network jitter (jitter-buffer.ts).
 * The simulated link reports each packet's transmit time; a receiver on a real network would
 * estimate the bottleneck's rate instead, or ignore it where the headroom is a fraction of a
 * millisecond (26 bytes take 0.2 ms at 1 Mbit/s).
 */
import { MAX_PACKET_BYTES } from '../../models/codec/bitrates.ts';
import type { JitterBuffer } from './jitter-buffer.ts';
import type { Delivery, SimulatedLink } from './network.ts';

/**
 * Pushes one delivery (a Whittle codec packet: 16-bit frame index in header bytes 1-2) into `jitter`.
 *
 * @example
 * for (const d of link.receive(now)) deliver(jitter, link, d);
 */
export function deliver(jitter: JitterBuffer<Uint8Array>, link: SimulatedLink<Uint8Array>, d: Delivery<Uint8Array>): void {
  const headroomMs = Math.max(0, link.transmitMs(MAX_PACKET_BYTES) - d.transmitMs);
  jitter.push((d.packet[1]! << 8) | d.packet[2]!, d.packet, d.arrivesAt, headroomMs);
}
