// Typed events, the one event mechanism of the daemon and the parts it is built from (scheduler,
// MQTT connection): a map from event name to payload type, and every listener run guarded, so
// that one failing listener logs an error instead of taking the emitter (or the daemon) down.
import type { Logger } from "pino";

type Listener<T> = (payload: T) => void;

/** No payload. */
export type Signal = Record<string, never>;

export class TypedEvents<E extends object> {
  private readonly listeners: { [K in keyof E]?: Listener<E[K]>[] } = {};

  constructor(private readonly logger?: Pick<Logger, "error">) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof E>(event: K, listener: Listener<E[K]>): () => void {
    const list = (this.listeners[event] ??= []) as Listener<E[K]>[];
    list.push(listener);
    return () => {
      const at = list.indexOf(listener);
      if (at >= 0) list.splice(at, 1);
    };
  }

  emit<K extends keyof E>(event: K, payload: E[K]): void {
    for (const listener of [...((this.listeners[event] ?? []) as Listener<E[K]>[])]) {
      try {
        listener(payload);
      } catch (err) {
        this.logger?.error({ err, event }, "event listener failed");
      }
    }
  }
}
