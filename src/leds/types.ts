// One status LED, whatever drives it.

export type LedPattern =
  | { kind: "off" }
  | { kind: "on" }
  | { kind: "heartbeat" }
  | { kind: "blink"; onMs: number; offMs: number };

export interface Led {
  show(pattern: LedPattern): Promise<void>;
  close(): Promise<void>;
}
