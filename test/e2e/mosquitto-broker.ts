// A private mosquitto for the end-to-end tests that can be stopped and started again on the same
// port (a broker restart), with a password file for the daemon, the admin and tenants t0..t7.
// test/helpers/mosquitto.ts picks a new port on every start, so it cannot restart one.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { mosquittoBinary } from "../helpers/mosquitto.js";

const ACL = fileURLToPath(new URL("../../../config/mosquitto/acl", import.meta.url));

export const mosquittoReady = mosquittoBinary !== null && spawnSync("mosquitto_passwd", ["-h"], { stdio: "ignore" }).error === undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, "127.0.0.1", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });
}

export class RestartableMosquitto {
  private child: ChildProcess | null = null;
  private constructor(
    readonly port: number,
    private readonly conf: string,
  ) {}

  get url(): string {
    return `mqtt://127.0.0.1:${this.port}`;
  }

  /** Users: every name in `users` with the password equal to the name. */
  static async create(users: string[]): Promise<RestartableMosquitto> {
    const dir = mkdtempSync(join(tmpdir(), "edgelora-e2e-mosq-"));
    const passwd = join(dir, "passwd");
    writeFileSync(passwd, "");
    for (const u of users) {
      const r = spawnSync("mosquitto_passwd", ["-b", passwd, u, u], { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`);
    }
    const port = await freePort();
    const conf = join(dir, "mosquitto.conf");
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        "allow_anonymous false",
        `password_file ${passwd}`,
        `acl_file ${ACL}`,
        "persistence false", // a restart loses retained messages and subscriptions: the daemon must restore them
        ...(process.getuid?.() === 0 ? ["user root"] : []),
      ].join("\n") + "\n",
    );
    const m = new RestartableMosquitto(port, conf);
    await m.start();
    return m;
  }

  async start(): Promise<void> {
    let output = "";
    const child = spawn(mosquittoBinary!, ["-c", this.conf], { stdio: ["ignore", "pipe", "pipe"] });
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    this.child = child;
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`mosquitto exited: ${output}`);
      if (await listening(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`mosquitto did not listen on ${this.port}: ${output}`);
  }

  stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    return new Promise((resolve) => {
      if (!child || child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGTERM");
    });
  }
}
