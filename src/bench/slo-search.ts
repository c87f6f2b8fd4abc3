// Finding a server's highest sustained rate (metrics.ts: keeps up, and meets the TTFT objective for 95%
// of requests) by bisection between the highest rate sustained so far and the lowest above it that was
// not: the sweep's coarse rates bound the knee, each further run halves the bracket.

export interface RateResult {
  rate: number;
  sustained: boolean;
}

export interface Bracket {
  lo: number; // highest sustained rate (0: none)
  hi: number | null; // lowest rate above lo that was not sustained (null: none yet)
}

/** The bracket around the knee: assumes a server that sustains a rate sustains every lower one. */
export function bracket(results: readonly RateResult[]): Bracket {
  const lo = Math.max(0, ...results.filter((r) => r.sustained).map((r) => r.rate));
  const above = results.filter((r) => !r.sustained && r.rate > lo).map((r) => r.rate);
  return { lo, hi: above.length ? Math.min(...above) : null };
}

/**
 * The next rate to run, or null once the bracket is within `tolerance` (relative to its top): the middle of
 * the bracket; twice the top when every rate was sustained; half the lowest when none was.
 */
export function nextRate(results: readonly RateResult[], tolerance: number): number | null {
  if (results.length === 0) return null;
  const { lo, hi } = bracket(results);
  if (hi === null) return round(lo * 2);
  if ((hi - lo) / hi <= tolerance) return null;
  return round(lo === 0 ? hi / 2 : (lo + hi) / 2);
}

/** Three significant digits: rates a reader can repeat. */
function round(x: number): number {
  return Number(x.toPrecision(3));
}
