/**
 * How far logits are from a reference, for tests: the worst |got - want| over the largest
 * |want|, i.e. relative to the logit range (a per-element relative error means nothing near 0).
 *
 * @example
 * expect(relativeLogitError(await runner.step(ids), reference.forward(id, p))).toBeLessThan(1e-4);
 */
export function relativeLogitError(got: Float32Array, want: Float32Array): number {
  if (got.length !== want.length) throw new Error(`${got.length} logits against ${want.length}`);
  let scale = 0;
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]!));
    worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  }
  return worst / scale;
}
