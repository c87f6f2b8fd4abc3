// systemd Type=notify: READY=1 once serving, WATCHDOG=1 every WatchdogSec/2 but only while the
// engine is loaded and the broker connection is up (so systemd restarts a daemon stuck without
// either), STOPPING=1 on shutdown. Each message is a datagram to NOTIFY_SOCKET sent from this
// process (through the addon: Node has no unix datagram sockets), so systemd credits it to the
// unit's main PID; a child `systemd-notify` can exit before systemd reads its message.
import { loadAddon } from "../engine/native.js";
import type { Timer } from "../runtime/clock.js";
import type { DaemonContext, Extension } from "./context.js";

export type Notifier = (state: string) => Promise<void>;

/** Sends to `socket` (NOTIFY_SOCKET: a path, or @name in the abstract namespace). */
export function socketNotifier(socket: string, send: (socket: string, message: string) => void = (s, m) => loadAddon().sdNotify(s, m)): Notifier {
  return async (state) => send(socket, state);
}

export class Systemd implements Extension {
  readonly name = "systemd";
  private timer: Timer | null = null;
  private readonly enabled: boolean;
  private readonly watchdogMs: number | null;
  private readonly notify: Notifier;

  constructor(
    private readonly ctx: DaemonContext,
    env: NodeJS.ProcessEnv = process.env,
    notify?: Notifier,
  ) {
    this.enabled = ctx.config.systemd.notify && !!env.NOTIFY_SOCKET;
    this.notify = notify ?? socketNotifier(env.NOTIFY_SOCKET ?? "");
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    this.watchdogMs = this.enabled && forUs && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : null;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.send("READY=1");
    if (this.watchdogMs !== null) {
      this.timer = this.ctx.clock.setInterval(() => this.kick(), this.watchdogMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) this.ctx.clock.clearTimeout(this.timer);
    if (this.enabled) await this.send("STOPPING=1");
  }

  private kick(): void {
    if (this.ctx.health.healthy) void this.send("WATCHDOG=1");
  }

  private send(state: string): Promise<void> {
    return this.notify(state).catch((err: unknown) => this.ctx.logger.warn({ err, state }, "systemd notify failed"));
  }
}
