/** Least-recently-used eviction to a byte budget, as a pure function. */

export interface EvictionCandidate {
  key: string;
  bytes: number;
  lastUsed: number;
}

/**
 * Which entries to evict so that `incoming` more bytes fit in `budget`, oldest first,
 * never touching `protect` (the entry being loaded). Returns null if even evicting every
 * candidate would not make room.
 */
export function pickEvictions(
  entries: readonly EvictionCandidate[],
  budget: number,
  incoming: number,
  protect: ReadonlySet<string> = new Set(),
): string[] | null {
  let used = entries.reduce((s, e) => s + e.bytes, 0);
  if (used + incoming <= budget) return [];
  const evictable = entries.filter((e) => !protect.has(e.key)).sort((a, b) => a.lastUsed - b.lastUsed);
  const out: string[] = [];
  for (const e of evictable) {
    if (used + incoming <= budget) break;
    out.push(e.key);
    used -= e.bytes;
  }
  return used + incoming <= budget ? out : null;
}
