// The daemon's health as one small state object; every change is announced on the event bus
// (status LED, systemd watchdog and the health admin op read it).
import type { HealthState } from "../leds/status.js";
import type { EventBus } from "./events.js";

export class Health {
  private readonly state: HealthState = { modelFailed: false, brokerDown: true, overloaded: false, busy: false };

  constructor(private readonly events: EventBus) {}

  get(): Readonly<HealthState> {
    return this.state;
  }

  /** Healthy = engine loaded and the broker connection up (overload and load are not faults). */
  get healthy(): boolean {
    return !this.state.modelFailed && !this.state.brokerDown;
  }

  set(change: Partial<HealthState>): void {
    const changed = (Object.keys(change) as (keyof HealthState)[]).some((k) => this.state[k] !== change[k]);
    if (!changed) return;
    Object.assign(this.state, change);
    this.events.emit("health", {});
  }
}
