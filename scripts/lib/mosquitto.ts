// A private Mosquitto on a free loopback port for scripts (bench:fleet): config/mosquitto/acl and a
// password file where each user's password is its name. The broker is the tests' (test/helpers/mosquitto.ts).
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../src/engine/native.js";
import { Mosquitto } from "../../test/helpers/mosquitto.js";

export async function startMosquitto(users: string[]): Promise<Mosquitto> {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-mosq-users-"));
  const passwd = join(dir, "passwd");
  writeFileSync(passwd, "");
  for (const u of users) {
    const r = spawnSync("mosquitto_passwd", ["-b", passwd, u, u], { encoding: "utf8" });
    if (r.error || r.status !== 0) throw new Error(`mosquitto_passwd failed (apt-get install mosquitto): ${r.error?.message ?? r.stderr}`);
  }
  return Mosquitto.create({ acl: join(packageRoot(), "config", "mosquitto", "acl"), passwd });
}
