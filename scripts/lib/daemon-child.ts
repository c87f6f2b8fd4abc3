// The daemon as a child process (`edgelora serve`) for scripts that measure it from outside: its
// memory is its own, and it can be started several times (a fleet on one machine).
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
  stop(): Promise<void>;
}

/** Writes `config` to <data_dir>/config.yaml, starts the daemon and resolves once it logs that it
 *  serves (so daemon.log_level must be info or lower). */
export async function startDaemonChild(config: Config, timeoutMs = 120_000): Promise<DaemonChild> {
  const file = join(config.daemon.data_dir, "config.yaml");
  writeFileSync(file, stringify(config));
  const cli = join(packageRoot(), "dist", "src", "cli.js");
  const proc = spawn(process.execPath, [cli, "serve", "--config", file], { stdio: ["ignore", "pipe", "pipe"] });
  const exit = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  let out = "";
  proc.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  // A daemon that did not come up is not left running.
  const port = await new Promise<number | null>((resolve, reject) => {
    let port: number | null = null;
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const rec = JSON.parse(line) as { msg?: string; port?: number };
          if (rec.msg === "embedded MQTT broker listening") port = rec.port ?? null;
          if (rec.msg === "edgelora serving") resolve(port);
        } catch {
          out += `${line}\n`;
        }
      }
    });
    void exit.then(() => reject(new Error(`edgelora serve exited: ${out}`)));
    setTimeout(() => reject(new Error(`edgelora serve did not start within ${timeoutMs} ms: ${out}`)), timeoutMs).unref();
  }).catch((err: unknown) => {
    proc.kill("SIGKILL");
    throw err;
  });
  return {
    proc,
    port,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
      await exit;
    },
  };
}
