// systemd Type=notify: READY=1 once serving, WATCHDOG=1 every WatchdogSec/2 but only while the
// engine is loaded and the broker connection is up (so systemd restarts a daemon stuck without
// either), STOPPING=1 on shutdown. Node has no unix datagram sockets without a native package, so
// messages go through the `systemd-notify` tool; the unit needs NotifyAccess=all for that.
import { execFile } from "node:child_process";
import type { DaemonContext, Extension } from "./context.js";

export type Notifier = (state: string) => Promise<void>;

export const systemdNotify: Notifier = (state) =>
  new Promise((resolve, reject) =>
    execFile("systemd-notify", [`--pid=${process.pid}`, state], (err) => (err ? reject(err) : resolve())),
  );

export class Systemd implements Extension {
  readonly name = "systemd";
  private timer: NodeJS.Timeout | null = null;
  private readonly enabled: boolean;
  private readonly watchdogMs: number | null;

  constructor(
    private readonly ctx: DaemonContext,
    env: NodeJS.ProcessEnv = process.env,
    private readonly notify: Notifier = systemdNotify,
  ) {
    this.enabled = ctx.config.systemd.notify && !!env.NOTIFY_SOCKET;
    const usec = Number(env.WATCHDOG_USEC);
    const forUs = env.WATCHDOG_PID === undefined || Number(env.WATCHDOG_PID) === process.pid;
    this.watchdogMs = this.enabled && forUs && usec > 0 ? Math.max(1, Math.floor(usec / 2000)) : null;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    await this.send("READY=1");
    if (this.watchdogMs !== null) this.timer = setInterval(() => this.kick(), this.watchdogMs).unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.enabled) await this.send("STOPPING=1");
  }

  private kick(): void {
    if (this.ctx.health.healthy) void this.send("WATCHDOG=1");
  }

  private send(state: string): Promise<void> {
    return this.notify(state).catch((err: unknown) => this.ctx.logger.warn({ err, state }, "systemd notify failed"));
  }
}
