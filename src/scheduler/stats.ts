// Throughput over a sliding window of recent steps, on the scheduler's clock.

const WINDOW_MS = 5000;
const MIN_SPAN_MS = 1000; // a burst of a few fast steps should not read as a huge rate

export class Throughput {
  private readonly samples: { at: number; tokens: number }[] = [];

  add(at: number, tokens: number): void {
    this.samples.push({ at, tokens });
    this.forget(at);
  }

  /** Generated tokens per second over the window (or since the oldest step in it). */
  perSecond(now: number): number {
    this.forget(now);
    if (this.samples.length === 0) return 0;
    const tokens = this.samples.reduce((sum, s) => sum + s.tokens, 0);
    return (tokens * 1000) / Math.max(now - this.samples[0].at, MIN_SPAN_MS);
  }

  private forget(now: number): void {
    while (this.samples.length > 0 && this.samples[0].at < now - WINDOW_MS) this.samples.shift();
  }
}
