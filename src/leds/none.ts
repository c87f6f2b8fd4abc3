import type { Led } from "./types.js";

/** No LED wired: every pattern is accepted and ignored. */
export class NoLed implements Led {
  async show(): Promise<void> {}
  async close(): Promise<void> {}
}
