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
