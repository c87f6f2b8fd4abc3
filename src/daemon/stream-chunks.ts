// Streamed replies, coalesced: the first text piece of an answer goes out at once (it is the time to first token),
// later pieces are gathered into one chunk per `intervalMs` or per `maxPieces` pieces, whichever comes first, and
// whatever is left goes out just before the final message. One MQTT message per token would cost the daemon more
// than the token (JSON, the broker, a QoS 1 acknowledgement each).
import { realClock, type Clock, type Timer } from "../runtime/clock.js";

export interface ChunkPolicy {
  intervalMs: number; // 0: every piece is its own chunk
  maxPieces: number;
}

export class ChunkCoalescer {
  private pending = "";
  private pieces = 0;
  private seq = 0;
  private timer: Timer | null = null;

  constructor(
    private readonly policy: ChunkPolicy,
    private readonly send: (delta: string, seq: number) => void,
    private readonly clock: Pick<Clock, "setTimeout" | "clearTimeout"> = realClock,
  ) {}

  push(piece: string): void {
    if (piece.length === 0) return;
    this.pending += piece;
    this.pieces++;
    if (this.seq === 0 || this.policy.intervalMs <= 0 || this.pieces >= this.policy.maxPieces) this.flush();
    else this.timer ??= this.clock.setTimeout(() => this.flush(), this.policy.intervalMs);
  }

  /** Sends what is gathered; call before the final message so that no text comes after it. */
  flush(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    if (this.pieces === 0) return;
    const delta = this.pending;
    this.pending = "";
    this.pieces = 0;
    this.send(delta, this.seq++);
  }
}
