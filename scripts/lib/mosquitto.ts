// A private Mosquitto on a free loopback port for scripts (bench:fleet): config/mosquitto/acl and a
// password file where each user's password is its name.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/engine/native.js";

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

const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const sock = connect(port, "127.0.0.1", () => (sock.destroy(), resolve(true)));
    sock.once("error", () => resolve(false));
  });

export async function startMosquitto(users: string[]): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-mosq-"));
  const passwd = join(dir, "passwd");
  writeFileSync(passwd, "");
  for (const u of users) {
    const r = spawnSync("mosquitto_passwd", ["-b", passwd, u, u], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new Error(`mosquitto_passwd failed (apt-get install mosquitto): ${r.error?.message ?? r.stderr}`);
  }
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  const lines = [`listener ${port} 127.0.0.1`, "allow_anonymous false", `password_file ${passwd}`, `acl_file ${join(packageRoot(), "config", "mosquitto", "acl")}`, "persistence false"];
  if (process.getuid?.() === 0) lines.push("user root");
  writeFileSync(conf, `${lines.join("\n")}\n`);
  const child: ChildProcess = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
  for (let i = 0; i < 100 && !(await listening(port)); i++) await new Promise((r) => setTimeout(r, 50));
  return {
    url: `mqtt://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
