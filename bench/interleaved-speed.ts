/**
 * Decode speed of several engines held by one Node process, measured so they see the same
 * machine: rounds alternate the engines (order reversed every other round), each a greedy
 * generation after a fixed prompt, and a token's cost is the process CPU time of the decode (a
 * 1-thread onnxruntime-web WASM session runs on the calling thread, so CPU time leaves out what
 * the OS gave other jobs). Speed-ups are the median of per-round ratios, so a slow minute
 * affects both sides of a ratio. Shared by bench/shape-speed.ts (width-speed, bench:prune's
 * synthetic rows) and bench/prune.ts (the sheared model against its parent).
 *
 * @example
 * const rates = await interleavedRates([{ name: 'full', engine: a }, { name: 'cut', engine: b }], { rounds: 5, tokens: 64 });
 * const { median, range } = speedup(rates.get('full')!, rates.get('cut')!);
 */
import type { TextEngine } from '../workers/text/engine.ts';

export interface SpeedOptions {
  rounds: number;
  /** Greedy tokens generated per measurement (the first closes the prefill and is not counted). */
  tokens: number;
  /** Token ids fed as given (no BOS added). Default 16 ids from 100: valid in every vocabulary here. */
  prompt?: readonly number[];
  log?: (line: string) => void;
}

const DEFAULT_PROMPT = Array.from({ length: 16 }, (_, i) => 100 + i);

/** Tokens per CPU-second of one greedy decode (the prefill excluded). */
export async function decodeRate(engine: TextEngine, tokens: number, prompt: readonly number[] = DEFAULT_PROMPT): Promise<number> {
  let cpu0: NodeJS.CpuUsage | null = null;
  let n = 0;
  for await (const ev of engine.generate(prompt, { maxTokens: tokens, greedy: true, stopTokens: [], addBos: false })) {
    if (ev.type !== 'token') continue;
    if (++n === 1) cpu0 = process.cpuUsage(); // the first token closes the prefill
  }
  const used = process.cpuUsage(cpu0!);
  return (n - 1) / ((used.user + used.system) / 1e6);
}

/** One warm-up decode per engine, then `rounds` interleaved rounds: every engine's rate per round, by name. */
export async function interleavedRates(engines: readonly { name: string; engine: TextEngine }[], options: SpeedOptions): Promise<Map<string, number[]>> {
  const prompt = options.prompt ?? DEFAULT_PROMPT;
  for (const e of engines) await decodeRate(e.engine, options.tokens, prompt);
  const rates = new Map(engines.map((e) => [e.name, [] as number[]]));
  for (let r = 0; r < options.rounds; r++) {
    const order = r % 2 === 0 ? engines : [...engines].reverse();
    for (const e of order) rates.get(e.name)!.push(await decodeRate(e.engine, options.tokens, prompt));
    options.log?.(`round ${r + 1}: ${engines.map((e) => `${e.name} ${rates.get(e.name)!.at(-1)!.toFixed(1)}`).join(', ')} tok per CPU-s`);
  }
  return rates;
}

export const median = (a: readonly number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;

/** `candidate` over `baseline`, round by round: the median ratio and its range. */
export function speedup(baseline: readonly number[], candidate: readonly number[]): { median: number; range: [number, number] } {
  const per = candidate.map((x, i) => x / baseline[i]!);
  return { median: median(per), range: [Math.min(...per), Math.max(...per)] };
}
