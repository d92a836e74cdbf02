import type { GenerateOptions, TextModel } from 'whittle';

/**
 * What every benchmark page shares with bench/run.ts: progress lines (console, which the runner
 * relays to stderr, and the page's <pre id="log">) and the result hand-off, `window.benchDone`
 * = `{ result }` or `{ error }`, which the runner polls for.
 */
export function log(line: string): void {
  console.log(line);
  document.getElementById('log')!.textContent += `${line}\n`;
}

/** Runs the benchmark and publishes its result (or its error) for bench/run.ts. */
export function report(run: () => Promise<unknown>): void {
  const publish = (done: { result?: unknown; error?: string }) => ((window as unknown as { benchDone: unknown }).benchDone = done);
  run().then(
    (result) => publish({ result }),
    (err: unknown) => publish({ error: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) }),
  );
}

/** The item with the median `key` (the lower middle one for an even count). */
export function medianBy<T>(items: readonly T[], key: (item: T) => number): T {
  return [...items].sort((a, b) => key(a) - key(b))[Math.floor((items.length - 1) / 2)]!;
}

/**
 * Greedy 64-token generations over `prompts` until `steps` tokens went through `lm`'s current
 * plan: V8's and onnxruntime's first runs of a plan are several times slower than later ones.
 */
export async function warmUp(lm: TextModel, steps: number, prompts: readonly string[], options: GenerateOptions = {}): Promise<void> {
  for (let done = 0; done < steps; done += 64) await lm.complete(prompts[(done / 64) % prompts.length]!, { maxTokens: 64, greedy: true, stopTokens: [], ...options });
}
