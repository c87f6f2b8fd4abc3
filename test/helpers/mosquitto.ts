// A private mosquitto on a random loopback port with a generated config, for tests of the
// external-broker path (MQTT 5) and of config/mosquitto/*. Returns null when mosquitto is not
// installed (apt-get install mosquitto mosquitto-clients), so tests can skip with a message.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Mosquitto {
  port: number;
  url: string;
  stop(): Promise<void>;
}

export const MOSQUITTO_MISSING = "mosquitto is not installed (apt-get install -y mosquitto mosquitto-clients): skipped";

function findBinary(): string | null {
  for (const bin of ["mosquitto", "/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"]) {
    if (spawnSync(bin, ["-h"], { stdio: "ignore" }).error === undefined) return bin;
  }
  return null;
}

export const mosquittoBinary = findBinary();

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

async function waitListening(port: number, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited: ${log()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect(port, "127.0.0.1", () => (sock.destroy(), resolve(true)));
      sock.once("error", () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`mosquitto did not listen on ${port}: ${log()}`);
}

/** Starts mosquitto with the given ACL and password files (copied), anonymous access off. */
export async function startMosquitto(files: { acl: string; passwd: string }): Promise<Mosquitto | null> {
  if (!mosquittoBinary) return null;
  const dir = mkdtempSync(join(tmpdir(), "edgelora-mosq-"));
  copyFileSync(files.acl, join(dir, "acl"));
  copyFileSync(files.passwd, join(dir, "passwd"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  writeFileSync(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous false",
      `password_file ${join(dir, "passwd")}`,
      `acl_file ${join(dir, "acl")}`,
      "persistence false",
      // Running as root, mosquitto would drop to a `mosquitto` user that cannot read the temp dir.
      ...(process.getuid?.() === 0 ? ["user root"] : []),
    ].join("\n") + "\n",
  );
  const child = spawn(mosquittoBinary, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  await waitListening(port, child, () => output);
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}
