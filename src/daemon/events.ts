// The daemon's events (runtime/events.ts: typed, every listener guarded).
import { TypedEvents, type Signal } from "../runtime/events.js";
import type { ErrorCode } from "../scheduler/types.js";

export interface DaemonEvents {
  /** A request was answered (code null = ok). */
  answered: { tenant: string; code: ErrorCode | null };
  /** The adapter registry changed (admin register/remove). */
  adaptersChanged: Signal;
  /** Some part of the health state changed (see Health). */
  health: Signal;
}

export class EventBus extends TypedEvents<DaemonEvents> {}
