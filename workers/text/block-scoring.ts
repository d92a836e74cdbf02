/**
 * Depth-pruning block scores (models/llama/scoring.ts defines them) computed through the ONNX
 * probe segments (probe-runner.ts): every block one graph, the final norm + head another, run
 * over each calibration window as one prefill from an empty cache.
 *
 * Layer-major, so each segment is compiled once, used for everything, and released before the
 * next (onnxruntime never holds more than one block's weights besides the compiled plan's):
 * - the full stream x_w (per window w) goes through block d; cos(x before, x after) per position
 *   gives the similarity scores;
 * - the stream "without block l" is the full stream before block l, then blocks l+1 .. L-1: it
 *   starts as a copy of x entering block l and joins every later block's batch of inputs, so all
 *   L removal streams together cost L(L-1)/2 block runs per window (they share their prefix with
 *   the full stream instead of recomputing it);
 * - the head, over the full stream and every removal stream, gives the teacher-forced NLLs.
 * Memory on the host: (L + 1) hidden states [S, dim] per window at most.
 *
 * Abortable: the probe checks the signal before every compile and every session.run.
 *
 * @example
 * const scores = await scoreBlocksOnnx(new ProbeRunner(source, signal), config, [config.bosTokenId, ...ids]);
 */
import { WhittleError } from '../../core/errors.ts';
import { addBlockSimilarity, calibrationWindows, checkCalibrationTokens, nllSum, similarityScores, similaritySums, type BlockScores, type ScoreOptions } from '../../models/llama/scoring.ts';
import type { LlamaConfig } from '../../models/llama/types.ts';
import type { ProbeRunner } from './probe-runner.ts';

export async function scoreBlocksOnnx(probe: ProbeRunner, config: LlamaConfig, tokens: readonly number[], options: ScoreOptions = {}): Promise<BlockScores> {
  checkCalibrationTokens(config, tokens);
  const L = config.nLayers;
  const windows = calibrationWindows(tokens, config.maxSeqLen);
  const withPerplexity = options.perplexity ?? true;
  const sums = similaritySums(L);
  const positions = windows.reduce((n, w) => n + w.length, 0);
  const predictions = windows.reduce((n, w) => n + Math.max(0, w.length - 1), 0);
  if (withPerplexity && predictions === 0) throw new WhittleError('INVALID_ARGUMENT', 'perplexity needs at least 2 tokens in a window');
  const t0 = performance.now();
  let removalMs = 0; // block runs of the removal streams, inside the block phase

  let full = windows.map((w) => probe.embed(w)); // per window [S_w, dim]
  // removed[l][w]: window w's stream without block l, advanced through the blocks run so far.
  const removed: Float32Array[][] = [];
  for (let d = 0; d < L; d++) {
    if (withPerplexity && L > 1) removed.push(full);
    const before = full;
    full = await probe.block(d, async (run) => {
      const after: Float32Array[] = [];
      for (const [w, h] of before.entries()) {
        after.push(await run(h));
        addBlockSimilarity(sums, d, h, after[w]!, config.dim);
      }
      // Every removal stream of an earlier block (l < d) goes through block d too; stream d skips it.
      const t = performance.now();
      for (const stream of removed.slice(0, d)) {
        for (let w = 0; w < stream.length; w++) stream[w] = await run(stream[w]!);
      }
      removalMs += performance.now() - t;
      return after;
    });
  }
  const similarityMs = performance.now() - t0 - removalMs;

  const perplexity: number[] = [];
  let fullPerplexity = NaN;
  if (withPerplexity) {
    const perplexityOf = (nll: number) => Math.exp(nll / predictions);
    await probe.head(async (run) => {
      // Window w's first S_w - 1 positions predict its tokens 1 .. S_w - 1.
      const nll = async (stream: readonly Float32Array[]) => {
        let sum = 0;
        for (const [w, window] of windows.entries()) {
          for (let from = 0; from < window.length - 1; from += probe.headPositions) {
            const count = Math.min(probe.headPositions, window.length - 1 - from);
            sum += nllSum(await run(stream[w]!, from, count), config.vocabSize, window.slice(from + 1, from + 1 + count));
          }
        }
        return sum;
      };
      for (const stream of removed) perplexity.push(perplexityOf(await nll(stream)));
      fullPerplexity = perplexityOf(await nll(full));
    });
  }
  const perplexityMs = performance.now() - t0 - similarityMs;
  return { nLayers: L, positions, predictions, ...similarityScores(sums, positions), perplexity, fullPerplexity, timing: { similarityMs, perplexityMs } };
}
