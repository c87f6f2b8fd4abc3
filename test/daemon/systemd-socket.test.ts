// systemd notifications reach a NOTIFY_SOCKET as datagrams whose sender is the daemon's own
// process (what systemd credits to the unit), from `edgelora serve` itself: READY=1 once serving,
// WATCHDOG=1 while healthy, STOPPING=1 on SIGTERM, then exit 0.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import test from "ava";

import { socketNotifier } from "../../src/daemon/systemd.js";
import { e2eAssets, e2eConfig, writeConfigFile } from "../e2e/harness.js";
import { FakeNotifySocket, python3Available } from "../helpers/notify-socket.js";

const CLI = fileURLToPath(new URL("../../src/cli.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "edgelora-notify-"));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const maybe = python3Available ? test.serial : test.serial.skip;

maybe("socketNotifier sends one datagram per state from this process, to a path or an @abstract name", async (t) => {
  for (const name of [join(dir, "direct.sock"), `@edgelora-test-${process.pid}`]) {
    const sock = await FakeNotifySocket.listen(name);
    try {
      await socketNotifier(name)("READY=1");
      const n = await sock.next("READY=1");
      t.is(n.pid, process.pid, name);
    } finally {
      sock.close();
    }
  }
});

test("socketNotifier rejects a socket name systemd would never give", async (t) => {
  await t.throwsAsync(socketNotifier("relative/path")("READY=1"), { message: /absolute path or an @abstract name/ });
  await t.throwsAsync(socketNotifier(join(dir, "nobody-listens.sock"))("READY=1"), { message: /sendto .*nobody-listens/ });
});

maybe("edgelora serve notifies READY, WATCHDOG and STOPPING from its own PID and exits 0 on SIGTERM", async (t) => {
  const name = join(dir, "serve.sock");
  const sock = await FakeNotifySocket.listen(name);
  const config = await e2eConfig(await e2eAssets(), (c) => (c.daemon.log_level = "info"));
  const proc = spawn(process.execPath, [CLI, "serve", "--config", writeConfigFile(config)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, NOTIFY_SOCKET: name, WATCHDOG_USEC: "200000" },
  });
  const exit = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  try {
    const ready = await sock.next("READY=1", 60_000);
    t.is(ready.pid, proc.pid ?? -1, "READY=1 comes from the daemon's own process");
    const kick = await sock.next("WATCHDOG=1");
    t.is(kick.pid, proc.pid ?? -1);
    proc.kill("SIGTERM");
    const stopping = await sock.next("STOPPING=1");
    t.is(stopping.pid, proc.pid ?? -1);
    t.is(await exit, 0);
  } finally {
    proc.kill("SIGKILL");
    sock.close();
  }
});
