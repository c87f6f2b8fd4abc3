import type { Led, LedPattern } from "./types.js";

/** Remembers every pattern shown, for tests. */
export class RecordingLed implements Led {
  readonly shown: LedPattern[] = [];
  closed = false;

  get current(): LedPattern | undefined {
    return this.shown[this.shown.length - 1];
  }

  async show(p: LedPattern): Promise<void> {
    this.shown.push(p);
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}
