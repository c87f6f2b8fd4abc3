// What the status LED says, most urgent condition first:
//   model load failed  slow blink   (1 s on, 1 s off)
//   broker down        fast blink   (100 ms on, 100 ms off)
//   overloaded         short flash  (100 ms on, 900 ms off)
//   inference running  solid on
//   healthy, idle      heartbeat
import type { LedPattern } from "./types.js";

export interface HealthState {
  modelFailed: boolean;
  brokerDown: boolean;
  overloaded: boolean;
  busy: boolean;
}

export const PATTERNS = {
  modelFailed: { kind: "blink", onMs: 1000, offMs: 1000 },
  brokerDown: { kind: "blink", onMs: 100, offMs: 100 },
  overloaded: { kind: "blink", onMs: 100, offMs: 900 },
  busy: { kind: "on" },
  idle: { kind: "heartbeat" },
} as const satisfies Record<string, LedPattern>;

export function patternFor(s: HealthState): LedPattern {
  if (s.modelFailed) return PATTERNS.modelFailed;
  if (s.brokerDown) return PATTERNS.brokerDown;
  if (s.overloaded) return PATTERNS.overloaded;
  if (s.busy) return PATTERNS.busy;
  return PATTERNS.idle;
}
