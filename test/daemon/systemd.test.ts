import test from "ava";
import { Systemd } from "../../src/daemon/systemd.js";
import { EventBus } from "../../src/daemon/events.js";
import { Health } from "../../src/daemon/health.js";
import type { DaemonContext } from "../../src/daemon/context.js";
import { quietLogger, sleep } from "../helpers/broker.js";

function ctx(health: Health): DaemonContext {
  return { config: { systemd: { notify: true } }, health, logger: quietLogger } as unknown as DaemonContext;
}

test("READY, then WATCHDOG only while engine and broker are healthy, STOPPING at the end", async (t) => {
  const health = new Health(new EventBus(quietLogger));
  health.set({ brokerDown: false });
  const sent: string[] = [];
  const sd = new Systemd(ctx(health), { NOTIFY_SOCKET: "/run/x", WATCHDOG_USEC: "40000" }, async (s) => void sent.push(s));
  await sd.start();
  await sleep(70);
  const healthyKicks = sent.filter((s) => s === "WATCHDOG=1").length;
  t.is(sent[0], "READY=1");
  t.true(healthyKicks >= 1);
  health.set({ brokerDown: true });
  const before = sent.length;
  await sleep(70);
  t.is(sent.length, before, "no watchdog kicks while the broker is down");
  await sd.stop();
  t.is(sent[sent.length - 1], "STOPPING=1");
});

test("without NOTIFY_SOCKET nothing is sent", async (t) => {
  const sent: string[] = [];
  const sd = new Systemd(ctx(new Health(new EventBus(quietLogger))), {}, async (s) => void sent.push(s));
  await sd.start();
  await sd.stop();
  t.deepEqual(sent, []);
});
