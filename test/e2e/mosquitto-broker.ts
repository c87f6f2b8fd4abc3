// Mosquitto for the end-to-end tests: a password file for the daemon, the admin and tenants
// t0..t7 (each password equal to the name) and config/mosquitto/acl, on a restartable broker.
import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Mosquitto, mosquittoBinary } from "../helpers/mosquitto.js";

const ACL = fileURLToPath(new URL("../../../config/mosquitto/acl", import.meta.url));

export const mosquittoReady = mosquittoBinary !== null && spawnSync("mosquitto_passwd", ["-h"], { stdio: "ignore" }).error === undefined;

/** A running mosquitto whose users are `users`, each with the password equal to the name. */
export async function mosquittoWithUsers(users: string[]): Promise<Mosquitto> {
  const passwd = join(mkdtempSync(join(tmpdir(), "edgelora-e2e-mosq-")), "passwd");
  writeFileSync(passwd, "");
  for (const u of users) {
    const r = spawnSync("mosquitto_passwd", ["-b", passwd, u, u], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`mosquitto_passwd: ${r.stderr}`);
  }
  return Mosquitto.create({ acl: ACL, passwd });
}
