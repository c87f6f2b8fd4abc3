// The daemon as a child process (`edgelora serve`), for scripts that measure it from outside (its
// memory is its own; several make a fleet on one machine) and for tests that kill it and start it
// again (test/e2e/child-daemon.ts). Its JSON log lines are parsed as they come.
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";
import type { Config } from "../../src/config/index.js";
import { packageRoot } from "../../src/engine/native.js";

export interface DaemonChild {
  proc: ChildProcess;
  /** Port of its embedded broker (null on an external broker). */
  port: number | null;
  /** Its JSON log lines so far (only with keepLogs). */
  logs: Record<string, unknown>[];
  /** Resolves with the exit code when it has exited. */
  exit: Promise<number | null>;
  /** Sends `signal` (default SIGKILL) unless it has exited, and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** A clean stop: SIGTERM, and waits for the exit. */
  stop(): Promise<void>;
}

export interface StartOptions {
  timeoutMs?: number; // default 120 s
  keepLogs?: boolean; // default false: a long run would hold every line
  env?: NodeJS.ProcessEnv; // added to this process's environment
  /** A command the daemon runs under (strace with fault injection): the two get a process group of
   *  their own, signalled together (a tracer killed alone would let its tracee run on). */
  wrap?: string[];
  /** Resolve as soon as the process is spawned instead of when it logs that it serves: for a run that
   *  is killed at a chosen point, which may come before that line (requests held in the broker are
   *  taken and answered while start-up is still finishing). */
  returnAtSpawn?: boolean;
}

/** Starts `edgelora serve --config configFile` and resolves once it logs that it serves (so
 *  daemon.log_level must be info or lower); a daemon that did not come up is not left running. */
export async function startDaemonProcess(configFile: string, o: StartOptions = {}): Promise<DaemonChild> {
  const timeoutMs = o.timeoutMs ?? 120_000;
  const cli = join(packageRoot(), "dist", "src", "cli.js");
  const command = [...(o.wrap ?? []), process.execPath, cli, "serve", "--config", configFile];
  const group = o.wrap !== undefined && o.wrap.length > 0;
  const proc = spawn(command[0], command.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...o.env }, detached: group });
  const signal = (s: NodeJS.Signals) => (group && proc.pid !== undefined ? process.kill(-proc.pid, s) : proc.kill(s));
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  const logs: Record<string, unknown>[] = [];
  let out = "";
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const port = await new Promise<number | null>((resolve, reject) => {
    if (o.returnAtSpawn) resolve(null);
    let port: number | null = null;
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (o.keepLogs) logs.push(rec);
          if (rec.msg === "embedded MQTT broker listening") port = rec.port ?? null;
          if (rec.msg === "edgelora serving") resolve(port);
        } catch {
          out += `${line}\n`;
        }
      }
    });
    void exit.then((code) => reject(new Error(`edgelora serve exited with ${code}: ${out}`)));
    setTimeout(() => reject(new Error(`edgelora serve did not start within ${timeoutMs} ms: ${out}`)), timeoutMs).unref();
  }).catch((err: unknown) => {
    if (proc.exitCode === null && proc.signalCode === null) signal("SIGKILL");
    throw err;
  });
  const kill = async (s: NodeJS.Signals = "SIGKILL") => {
    if (proc.exitCode === null && proc.signalCode === null) signal(s);
    await exit;
  };
  return { proc, port, logs, exit, kill, stop: () => kill("SIGTERM") };
}

/** Writes `config` to <data_dir>/config.yaml and starts the daemon on it. */
export function startDaemonChild(config: Config, timeoutMs = 120_000): Promise<DaemonChild> {
  const file = join(config.daemon.data_dir, "config.yaml");
  writeFileSync(file, stringify(config));
  return startDaemonProcess(file, { timeoutMs });
}
