// A private mosquitto on a random loopback port with a generated config, for tests of the
// external-broker path (MQTT 5) and of config/mosquitto/*. Returns null when mosquitto is not
// installed (apt-get install mosquitto mosquitto-clients), so tests can skip with a message.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config/index.js";
import { freePort } from "./ports.js";

export const MOSQUITTO_MISSING = "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients): skipped";

function findBinary(): string | null {
  for (const bin of ["mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]) {
    if (spawnSync(bin, ["-h"], { stdio: "ignore" }).error === undefined) return bin;
  }
  return null;
}

export const mosquittoBinary = findBinary();

/** A private mosquitto on a fixed loopback port; it can be stopped and started again there
 *  (a broker restart). Retained messages and sessions do not survive a restart. */
export class Mosquitto {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly conf: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Writes a config for these ACL and password files (anonymous access off) and starts it. */
  static async create(files: { acl: string; passwd: string }): Promise<Mosquitto> {
    if (!mosquittoBinary) throw new Error(MOSQUITTO_MISSING);
    const dir = mkdtempSync(join(tmpdir(), "edgelora-mosq-"));
    const conf = join(dir, "mosquitto.conf");
    // The port was free when picked; another test file's server may take it before mosquitto binds
    // it (then it says so and exits): pick another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      writeFileSync(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          "allow_anonymous false",
          `password_file ${files.passwd}`,
          `acl_file ${files.acl}`,
          "persistence false",
          // Running as root, mosquitto would drop to a `mosquitto` user that cannot read the temp dir.
          ...(process.getuid?.() === 0 ? ["user root"] : []),
        ].join("\n") + "\n",
      );
      const m = new Mosquitto(port, conf);
      try {
        await m.start();
        return m;
      } catch (err) {
        if (attempt === 5 || !/Address already in use/.test((err as Error).message)) throw err;
      }
    }
  }

  /** Starts it (again) on its port; resolves once it says it runs, which it does only once it has
   *  bound the port (something else answering on the port does not count). */
  async start(): Promise<void> {
    let output = "";
    const child = spawn(mosquittoBinary!, ["-c", this.conf], { stdio: ["ignore", "pipe", "pipe"] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`mosquitto did not start on ${this.port} within 30 s: ${output}`)), 30_000);
      const onData = (d: Buffer) => {
        output += d.toString();
        if (/ running$/m.test(output)) (clearTimeout(timer), resolve());
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.once("exit", (code) => (clearTimeout(timer), reject(new Error(`mosquitto exited with ${code}: ${output}`))));
    });
  }

  stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    return new Promise((resolve) => {
      if (!child || child.exitCode !== null) return resolve();
      // Sent again until it exits: mosquitto 2.0 logs "running" just before it arms its main loop,
      // and a SIGTERM that comes in between is lost (seen: a stop right after a start hung).
      const again = setInterval(() => child.kill("SIGTERM"), 500);
      child.once("exit", () => (clearInterval(again), resolve()));
      child.kill("SIGTERM");
    });
  }
}

/** Starts mosquitto with copies of the given ACL and password files; null when it is not installed. */
export async function startMosquitto(files: { acl: string; passwd: string }): Promise<Mosquitto | null> {
  if (!mosquittoBinary) return null;
  const dir = mkdtempSync(join(tmpdir(), "edgelora-mosq-files-"));
  copyFileSync(files.acl, join(dir, "acl"));
  copyFileSync(files.passwd, join(dir, "passwd"));
  return Mosquitto.create({ acl: join(dir, "acl"), passwd: join(dir, "passwd") });
}

/** Points a daemon config at `m` as the user edgelora (password edgelora, as the tests make it). */
export function useMosquitto(c: Config, m: Mosquitto, clientId?: string): void {
  Object.assign(c.mqtt, { embedded: false, url: m.url, username: "edgelora", password: "edgelora" });
  if (clientId !== undefined) c.mqtt.client_id = clientId;
}
