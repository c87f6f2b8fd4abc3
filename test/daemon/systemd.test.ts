import test from "ava";
import { Systemd } from "../../src/daemon/systemd.js";
import { EventBus } from "../../src/daemon/events.js";
import { Health } from "../../src/daemon/health.js";
import type { DaemonContext } from "../../src/daemon/context.js";
import { quietLogger } from "../helpers/broker.js";
import { FakeClock } from "../helpers/fake-clock.js";

function ctx(health: Health, clock = new FakeClock()): DaemonContext {
  return { config: { systemd: { notify: true } }, health, logger: quietLogger, clock } as unknown as DaemonContext;
}

const settle = () => new Promise((r) => setImmediate(r));

test("READY, then WATCHDOG only while engine and broker are healthy, STOPPING at the end", async (t) => {
  const health = new Health(new EventBus(quietLogger));
  health.set({ brokerDown: false });
  const sent: string[] = [];
  const clock = new FakeClock();
  const sd = new Systemd(ctx(health, clock), { NOTIFY_SOCKET: "/run/x", WATCHDOG_USEC: "40000" }, async (s) => void sent.push(s));
  await sd.start();
  clock.advance(70); // WATCHDOG_USEC/2 = 20 ms: kicks at 20, 40 and 60
  await settle();
  t.deepEqual(sent, ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "WATCHDOG=1"]);
  health.set({ brokerDown: true });
  clock.advance(70);
  await settle();
  t.is(sent.length, 4, "no watchdog kicks while the broker is down");
  await sd.stop();
  t.is(sent[sent.length - 1], "STOPPING=1");
  t.is(clock.pending, 0, "the watchdog timer is gone");
});

test("without NOTIFY_SOCKET nothing is sent", async (t) => {
  const sent: string[] = [];
  const sd = new Systemd(ctx(new Health(new EventBus(quietLogger))), {}, async (s) => void sent.push(s));
  await sd.start();
  await sd.stop();
  t.deepEqual(sent, []);
});
