/**
 * The soak's model worker on WebGPU: the real worker entry its name asks for (the codec's for a
 * `whittle-codec:…` worker, else the text worker), with its GPU buffers counted
 * (e2e/pages/gpu-buffer-count.ts) so the page can sample the live ones as it goes.
 */
import { countGpuBuffers } from '../../e2e/pages/gpu-buffer-count.ts';

countGpuBuffers(); // before onnxruntime creates its device and first buffers

if (self.name.startsWith('whittle-codec')) await import('../../workers/codec.worker.ts');
else await import('../../workers/text.worker.ts');
