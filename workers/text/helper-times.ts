/**
 * Whether the decode kernels' helper thread pays, measured on the steps themselves: exponential
 * averages of kernel step times with the helper on and off, the faster mode used, the other timed
 * again every HELPER_PROBE_EVERY steps (runner.ts `helperMode`). A helper's half that arrives
 * late on a busy machine makes a step several times slower; the timing turns it off, and back on
 * when the machine is quiet again.
 *
 * @example
 * const times = new HelperTimes();
 * const mode = times.choose(); // 'on' first, then 'off', then the faster
 * times.record(mode, stepMs);
 */

/** Every this many kernel steps the helper mode not in use is timed again. */
const HELPER_PROBE_EVERY = 16;

/** Recent kernel step times (ms, exponential average) with the helper thread on and off. */
export class HelperTimes {
  private on = NaN;
  private off = NaN;
  private steps = 0;
  /** The last choice was a probe of the slower mode: its time replaces that mode's stale average. */
  private probing = false;

  /** The faster mode so far ('on' until 'off' is known to be faster); the other one every HELPER_PROBE_EVERY steps. */
  choose(): 'on' | 'off' {
    this.steps++;
    this.probing = false;
    if (Number.isNaN(this.on)) return 'on';
    if (Number.isNaN(this.off)) return 'off';
    const best = this.on <= this.off ? 'on' : 'off';
    if (this.steps % HELPER_PROBE_EVERY !== 0) return best;
    this.probing = true;
    return best === 'on' ? 'off' : 'on';
  }

  record(mode: 'on' | 'off' | 'near-graph-run', ms: number): void {
    if (mode === 'near-graph-run') return; // contended by onnxruntime's spinning threads: says nothing about either mode
    const prev = this[mode];
    this[mode] = Number.isNaN(prev) || this.probing ? ms : prev * 0.75 + ms * 0.25;
  }
}
