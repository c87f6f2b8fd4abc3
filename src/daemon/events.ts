// The daemon's typed event bus. Every listener runs guarded: one failing feature logs an error
// instead of taking the others (or the daemon) down.
import type { Logger } from "pino";
import type { ErrorCode } from "../scheduler/types.js";

export interface DaemonEvents {
  /** A request was answered (code null = ok). */
  answered: { tenant: string; code: ErrorCode | null };
  /** The adapter registry changed (admin register/remove). */
  adaptersChanged: Record<string, never>;
  /** Some part of the health state changed (see Health). */
  health: Record<string, never>;
}

type Listener<T> = (payload: T) => void;

export class EventBus {
  private readonly listeners: { [K in keyof DaemonEvents]?: Listener<DaemonEvents[K]>[] } = {};

  constructor(private readonly logger: Logger) {}

  on<K extends keyof DaemonEvents>(event: K, listener: Listener<DaemonEvents[K]>): () => void {
    const list = (this.listeners[event] ??= []) as Listener<DaemonEvents[K]>[];
    list.push(listener);
    return () => list.splice(list.indexOf(listener), 1);
  }

  emit<K extends keyof DaemonEvents>(event: K, payload: DaemonEvents[K]): void {
    for (const listener of [...((this.listeners[event] ?? []) as Listener<DaemonEvents[K]>[])]) {
      try {
        listener(payload);
      } catch (err) {
        this.logger.error({ err, event }, "event listener failed");
      }
    }
  }
}
