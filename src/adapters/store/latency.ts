// Promotion latencies per source tier: the last `keep` samples, for p50 / p99 in bridge/metrics.

export interface LatencySummary {
  count: number;
  p50_ms: number | null;
  p99_ms: number | null;
}

export class LatencyWindow {
  private readonly samples: number[] = [];
  private next = 0;
  private total = 0;

  constructor(private readonly keep = 1024) {}

  add(ms: number): void {
    this.total++;
    if (this.samples.length < this.keep) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.keep;
  }

  summary(): LatencySummary {
    if (this.samples.length === 0) return { count: 0, p50_ms: null, p99_ms: null };
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number) => Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] * 100) / 100;
    return { count: this.total, p50_ms: at(0.5), p99_ms: at(0.99) };
  }
}
