// The clock the daemon's timers run on, passed in the daemon's context (as MQTT.js injects its
// timers) so that tests can drive time with a fake instead of waiting for it.

/** A pending timer; `unref()` lets the process exit while it waits (as Node's timers). */
export interface Timer {
  unref(): unknown;
}

export interface Clock {
  /** Milliseconds since the epoch (Date.now). */
  now(): number;
  setTimeout(fn: () => void, ms: number): Timer;
  setInterval(fn: () => void, ms: number): Timer;
  /** Cancels a timer of either kind. */
  clearTimeout(timer: Timer): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout),
};
