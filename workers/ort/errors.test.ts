/**
 * onnxruntime's failures as WhittleError codes: out of memory from a real run that outgrows the
 * WASM heap (onnxruntime-web in Node), and the mapping on the exact texts onnxruntime, V8 and
 * Emscripten produce (each captured from a real failure, noted where).
 */
import { describe, expect, it } from 'vitest';
import * as Comlink from 'comlink';
import { MessageChannel } from 'node:worker_threads';
import { WhittleError } from '../../core/errors.ts';
import { installErrorTransfer } from '../../core/rpc-errors.ts';
import { GraphBuilder } from '../../models/onnx/builder.ts';
import { createSession, loadOrt } from './runtime.ts';
import { isOutOfMemory, ortError } from './errors.ts';

const ort = await loadOrt({ backend: 'wasm', numThreads: 1 });

/** Two outputs of a size the caller picks at run time: zeros of `n` floats each. */
function twoZeroOutputs() {
  const g = new GraphBuilder('two-zeros');
  const shape = g.input('shape', 'int64', [1]);
  g.output(g.op('ConstantOfShape', [shape]), 'float32', ['n']);
  g.output(g.op('ConstantOfShape', [shape]), 'float32', ['n']);
  return g.build();
}

describe('onnxruntime failures become typed errors', () => {
  it('a run whose outputs outgrow the 4 GiB WASM heap rejects with OUT_OF_MEMORY, and the session still runs', async () => {
    const session = await createSession(ort, twoZeroOutputs(), 'wasm');
    // 2 x 2.125 GiB: the first output fits, the second cannot (onnxruntime: std::bad_alloc).
    const huge = new ort.Tensor('int64', new BigInt64Array([0x22000000n]), [1]);
    const err = await session.run({ shape: huge }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(WhittleError);
    expect(err).toMatchObject({ code: 'OUT_OF_MEMORY', details: { backend: 'wasm', op: 'run' } });
    expect((err as WhittleError).message).toContain('bad_alloc');
    const small = await session.run({ shape: new ort.Tensor('int64', new BigInt64Array([3n]), [1]) });
    expect(Object.values(small).map((t) => t.size)).toEqual([3, 3]);
    await session.release();
  }, 60_000);

  it('a graph onnxruntime rejects is BAD_MODEL', async () => {
    const err = await createSession(ort, { model: new Uint8Array([8, 7, 0x3a, 3, 1, 2, 3]), externalData: [] }, 'wasm').then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'BAD_MODEL', details: { op: 'create' } });
  });

  it("V8's own allocation failures are OUT_OF_MEMORY", () => {
    const thrown = (f: () => unknown): unknown => {
      try {
        f();
      } catch (e) {
        return e;
      }
      throw new Error('did not throw');
    };
    const jsBuffer = thrown(() => new ArrayBuffer(2 ** 40)); // RangeError: Array buffer allocation failed
    const heap = thrown(() => new WebAssembly.Memory({ initial: 1 }).grow(70_000)); // RangeError: ...Unable to grow instance memory
    expect(ortError(jsBuffer, 'create', 'wasm').code).toBe('OUT_OF_MEMORY');
    expect(ortError(heap, 'run', 'wasm').code).toBe('OUT_OF_MEMORY');
  });

  it('maps the texts onnxruntime and the browser produce', () => {
    const cases: [string, 'create' | 'run', string][] = [
      // onnxruntime-web 1.30 in Node, both captured from real runs (the run case is the test above).
      ["Can't create a session. ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc", 'create', 'OUT_OF_MEMORY'],
      ['failed to call OrtRun(). ERROR_CODE: 6, ERROR_MESSAGE: std::bad_alloc', 'run', 'OUT_OF_MEMORY'],
      // onnxruntime's arena and WebGPU buffer manager, Emscripten's abort, Chromium's WebGPU.
      [
        'failed to call OrtRun(). ERROR_CODE: 6, ERROR_MESSAGE: Failed to allocate memory for requested buffer of size 2281701376',
        'run',
        'OUT_OF_MEMORY',
      ],
      ['RuntimeError: Aborted(OOM)', 'create', 'OUT_OF_MEMORY'],
      ['Cannot enlarge memory, requested 4404019200 bytes, but the limit is 4294967296 bytes!', 'run', 'OUT_OF_MEMORY'],
      ['RangeError: WebAssembly.Memory(): could not allocate memory', 'create', 'OUT_OF_MEMORY'],
      ['GPUOutOfMemoryError: Out of memory', 'run', 'OUT_OF_MEMORY'],
      ['Buffer size (4294967296) exceeds the max buffer size limit (268435456).', 'run', 'OUT_OF_MEMORY'],
      // Real, not memory: a 4 GiB tensor's byte count overflows 32-bit size_t (captured in Node);
      // a shape past int64 is a bad argument. Neither is a failed allocation.
      [
        'failed to call OrtRun(). ERROR_CODE: 1, ERROR_MESSAGE: /onnxruntime/core/common/safeint.h:17 SafeIntOnOverflow() Integer overflow',
        'run',
        'INTERNAL',
      ],
      ["Can't create a session. ERROR_CODE: 2, ERROR_MESSAGE: Load model failed: protobuf parsing failed.", 'create', 'BAD_MODEL'],
      // Dawn on a lost device.
      ['OperationError: Device is lost', 'run', 'DEVICE_LOST'],
    ];
    for (const [message, op, code] of cases) expect([message, ortError(new Error(message), op, 'webgpu').code]).toEqual([message, code]);
    expect(isOutOfMemory(new Error('shape mismatch'))).toBe(false);
  });

  it('keeps WhittleErrors and aborts as they are', () => {
    const own = new WhittleError('INVALID_ARGUMENT', 'no');
    expect(ortError(own, 'run', 'wasm')).toBe(own);
    expect(ortError(new DOMException('stop', 'AbortError'), 'run', 'wasm').code).toBe('ABORTED');
  });

  it('DEVICE_LOST and OUT_OF_MEMORY cross a real comlink channel with their codes', async () => {
    installErrorTransfer();
    const { port1, port2 } = new MessageChannel();
    const api = {
      fail(code: 'DEVICE_LOST' | 'OUT_OF_MEMORY'): string {
        throw new WhittleError(code, `${code} here`, { backend: 'webgpu' });
      },
    };
    Comlink.expose(api, port1 as unknown as Comlink.Endpoint);
    const remote = Comlink.wrap<typeof api>(port2 as unknown as Comlink.Endpoint);
    for (const code of ['DEVICE_LOST', 'OUT_OF_MEMORY'] as const) {
      const err = await remote.fail(code).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(WhittleError);
      expect(err).toMatchObject({ code, details: { backend: 'webgpu' } });
    }
    port1.close();
    port2.close();
  });
});
