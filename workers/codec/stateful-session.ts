/** One onnxruntime session of a converted streaming graph, its state carried from run to run. */
import type * as Ort from 'onnxruntime-web';
import type { ConvertedGraph } from '../../models/import/tflite/convert.ts';
import { createSession, type Backend, type OrtModule } from '../ort/runtime.ts';

/**
 * A session with its streaming state (state_out of a run is state_in of the next). On WebGPU
 * the state outputs stay in GPU buffers (`preferredOutputLocation`) and go straight back in as
 * the next frame's inputs, so the conv history never crosses to the CPU; the previous frame's
 * buffers are disposed once consumed (the pattern workers/text/runner.ts uses for KV caches).
 */
export class StatefulSession {
  private state: Record<string, Ort.Tensor> = {};
  private constructor(
    private readonly ort: OrtModule,
    private readonly session: Ort.InferenceSession,
    readonly graph: ConvertedGraph,
    private readonly onDevice: boolean,
  ) {
    this.reset();
  }

  static async create(ort: OrtModule, graph: ConvertedGraph, backend: Backend, stateOnDevice = true): Promise<StatefulSession> {
    const onDevice = stateOnDevice && backend === 'webgpu' && graph.states.length > 0;
    const location: Record<string, 'gpu-buffer'> = {};
    for (const s of graph.states) location[s.outputName] = 'gpu-buffer';
    const session = await createSession(ort, graph.built, backend, onDevice ? { preferredOutputLocation: location } : {});
    return new StatefulSession(ort, session, graph, onDevice);
  }

  reset(): void {
    this.release();
    this.state = Object.fromEntries(this.graph.states.map((s) => [s.inputName, new this.ort.Tensor('float32', s.init.slice(), s.shape)]));
  }

  async run(feeds: Record<string, Ort.Tensor>): Promise<Record<string, Ort.Tensor>> {
    const out = await this.session.run({ ...feeds, ...this.state });
    this.release(); // the previous state was consumed by this run
    this.state = Object.fromEntries(this.graph.states.map((s) => [s.inputName, out[s.outputName]!]));
    return out;
  }

  /** Frees GPU-resident state tensors (CPU ones are plain arrays: nothing to free). */
  private release(): void {
    if (!this.onDevice) return;
    for (const t of Object.values(this.state)) if (t.location === 'gpu-buffer') t.dispose();
  }

  async dispose(): Promise<void> {
    this.release();
    this.state = {};
    await this.session.release();
  }
}
