// hw/install.sh against a temporary root prefix: the files it writes, the system commands it
// prints instead of running, that a second run changes nothing, that --dry-run writes nothing,
// and that the starter config it writes is one the daemon accepts.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";

import { loadConfig } from "../../src/config/index.js";
import { packageRoot } from "../../src/engine/native.js";

const SCRIPT = join(packageRoot(), "hw", "install.sh");
const base = mkdtempSync(join(tmpdir(), "edgelora-install-"));
test.after.always(() => rmSync(base, { recursive: true, force: true }));

function install(...args: string[]) {
  const r = spawnSync("bash", [SCRIPT, ...args], { encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test("installs the unit, config, data dir, zram warm tier and LED overlay under a root prefix; a second run changes nothing", (t) => {
  const root = mkdtempSync(join(base, "root-"));
  const first = install("--root", root, "--zram", "512M", "--led-gpio", "17");
  t.is(first.code, 0, first.err);
  for (const cmd of [
    "useradd --system --home-dir /var/lib/edgelora --shell /usr/sbin/nologin --groups gpio edgelora",
    "systemctl daemon-reload", "systemctl enable edgelora.service", "systemctl enable --now edgelora-zram-warm.service",
  ]) t.true(first.out.includes(`would run: ${cmd}`), cmd);

  const unit = readFileSync(join(root, "etc/systemd/system/edgelora.service"), "utf8");
  t.regex(unit, new RegExp(`^ExecStart=\\S+/node ${packageRoot()}/dist/src/cli.js serve --config /etc/edgelora/config.yaml$`, "m"));
  t.regex(unit, /^Type=notify$/m);
  t.regex(unit, /^NotifyAccess=main$/m);
  t.regex(readFileSync(join(root, "etc/systemd/system/edgelora-zram-warm.service"), "utf8"), /zram-warm\.sh start \/dev\/zram1 512M zstd \/var\/lib\/edgelora\/warm edgelora/);
  t.true(existsSync(join(root, "var/lib/edgelora")));
  t.true(existsSync(join(root, "etc/udev/rules.d/99-edgelora-led.rules")));
  const overlay = "dtoverlay=gpio-led,gpio=17,label=edgelora,trigger=none";
  const config = loadConfig({ file: join(root, "etc/edgelora/config.yaml"), env: {} });
  t.is(config.daemon.data_dir, "/var/lib/edgelora");
  t.is(config.leds.backend, "sysfs");
  t.is(config.leds.status, "edgelora");

  const files = ["etc/systemd/system/edgelora.service", "etc/edgelora/config.yaml", "boot/firmware/config.txt"];
  const before = files.map((f) => readFileSync(join(root, f), "utf8"));
  const second = install("--root", root, "--zram", "512M", "--led-gpio", "17");
  t.is(second.code, 0, second.err);
  t.notRegex(second.out, /^(created|updated|appended)/m, "a second run changes nothing");
  t.regex(second.out, /^kept: \/etc\/edgelora\/config\.yaml$/m);
  t.deepEqual(files.map((f) => readFileSync(join(root, f), "utf8")), before);
  t.is(before[2].split("\n").filter((l) => l === overlay).length, 1);
});

test("an existing boot config keeps its lines and gets the overlay once; a user's config.yaml is never replaced", (t) => {
  const root = mkdtempSync(join(base, "root-"));
  t.is(install("--root", root).code, 0);
  writeFileSync(join(root, "etc/edgelora/config.yaml"), "model:\n  path: /opt/models/mine.gguf\n");
  const boot = join(root, "boot/firmware/config.txt");
  mkdirSync(join(root, "boot/firmware"), { recursive: true });
  writeFileSync(boot, "dtparam=audio=on\n");
  t.is(install("--root", root, "--led-gpio", "27").code, 0);
  t.is(readFileSync(join(root, "etc/edgelora/config.yaml"), "utf8"), "model:\n  path: /opt/models/mine.gguf\n");
  t.is(readFileSync(boot, "utf8"), "dtparam=audio=on\ndtoverlay=gpio-led,gpio=27,label=edgelora,trigger=none\n");
});

test("--dry-run writes nothing and prints what it would do", (t) => {
  const root = mkdtempSync(join(base, "dry-"));
  const r = install("--root", root, "--dry-run", "--zram", "1G", "--led-gpio", "17");
  t.is(r.code, 0, r.err);
  t.regex(r.out, /^would write: \/etc\/systemd\/system\/edgelora\.service$/m);
  t.regex(r.out, /^would append to \/boot\/firmware\/config\.txt: dtoverlay=gpio-led,gpio=17/m);
  t.regex(r.out, /^would run: systemctl enable edgelora\.service$/m);
  t.false(existsSync(join(root, "etc")));
});

test("bad options are refused with a message", (t) => {
  for (const args of [["--zram", "lots"], ["--led-gpio", "GPIO17"], ["--frobnicate"], ["--app", "/nonexistent"]]) {
    const r = install("--root", base, "--dry-run", ...args);
    t.is(r.code, 2, args.join(" "));
    t.regex(r.err, /install\.sh: /);
  }
});
