// Incremental text of one generated sequence: token bytes in, complete characters out. Stop strings are cut off
// (the stop text itself is never part of the output), and a tail that could still grow into a stop string is
// held back from streaming until the next token settles it.

export class TextStream {
  private readonly decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  private readonly stops: string[];
  private readonly longestStop: number;
  private text = "";
  private emitted = 0; // chars of `text` already handed out as deltas
  private scanned = 0; // chars of `text` already searched for complete stop strings
  private stoppedAt = -1;

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
    this.longestStop = Math.max(0, ...this.stops.map((s) => s.length));
  }

  /** Feeds one token's bytes; returns the text that is now safe to stream (possibly ""). */
  push(bytes: Uint8Array): string {
    if (this.stopped) return "";
    // stream: true keeps an incomplete UTF-8 sequence inside the decoder until its last byte arrives.
    this.text += this.decoder.decode(bytes, { stream: true });
    const hit = this.findStop();
    if (hit >= 0) {
      this.stoppedAt = hit;
      this.text = this.text.slice(0, hit);
      return this.take(hit);
    }
    return this.take(this.text.length - this.heldBack());
  }

  /** The sequence ended without a stop string: everything held back (and any broken UTF-8 tail) is text. */
  flush(): string {
    if (!this.stopped) this.text += this.decoder.decode();
    return this.take(this.text.length);
  }

  get stopped(): boolean {
    return this.stoppedAt >= 0;
  }

  get value(): string {
    return this.text;
  }

  private take(end: number): string {
    const piece = this.text.slice(this.emitted, end);
    this.emitted = Math.max(this.emitted, end);
    return piece;
  }

  /** Earliest complete stop string; only the new text (plus an overlap for stops that straddle it) is searched. */
  private findStop(): number {
    const from = Math.max(0, this.scanned - this.longestStop + 1);
    this.scanned = this.text.length;
    let best = -1;
    for (const stop of this.stops) {
      const at = this.text.indexOf(stop, from);
      if (at >= 0 && (best < 0 || at < best)) best = at;
    }
    return best;
  }

  /** Length of the longest unstreamed suffix that is a proper prefix of some stop string. */
  private heldBack(): number {
    const pending = this.text.length - this.emitted;
    let held = 0;
    for (const stop of this.stops) {
      for (let k = Math.min(stop.length - 1, pending); k > held; k--) {
        if (this.text.endsWith(stop.slice(0, k))) {
          held = k;
          break;
        }
      }
    }
    return held;
  }
}
