import test from "ava";
import { Bus } from "../../src/mqtt/client.js";
import { hashPassword, verifyPassword } from "../../src/mqtt/password.js";
import { EmbeddedBroker } from "../../src/mqtt/broker.js";
import { userDirectory } from "../../src/mqtt/users.js";
import { collect, quietLogger, until } from "../helpers/broker.js";
import { connectAsync } from "mqtt";

test("password hashes verify, reject wrong passwords and malformed hashes", async (t) => {
  const h = await hashPassword("pw", { N: 1024, r: 8, p: 1 });
  t.regex(h, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
  t.true(await verifyPassword("pw", h));
  t.false(await verifyPassword("pW", h));
  for (const bad of ["", "scrypt$x", "md5$1$2$3$4$5", h.replace("$1024$", "$0$")]) t.false(await verifyPassword("pw", bad));
});

test("after a broker restart the bus reconnects, resubscribes and republishes retained state", async (t) => {
  const { users, daemon } = userDirectory({ tenants: {}, admin: { username: "admin", password_hash: await hashPassword("a", { N: 1024, r: 8, p: 1 }) } });
  const opts = { host: "127.0.0.1", base: "edgelora", users, logger: quietLogger };
  let broker = new EmbeddedBroker({ ...opts, port: 0 });
  const port = await broker.listen();
  broker.openToClients();
  const bus = new Bus({
    url: `mqtt://127.0.0.1:${port}`, protocolVersion: 4, clientId: "t-daemon", ...daemon, qos: 1, keepaliveS: 5,
    reconnectMs: 100, will: { topic: "edgelora/bridge/state", payload: "offline" }, logger: quietLogger,
  });
  const got: string[] = [];
  bus.start();
  await bus.waitConnected();
  await bus.subscribe("edgelora/+/ping", (m) => got.push(m.payload.toString()));
  await bus.setRetained("edgelora/bridge/state", "online");

  const down = new Promise<void>((resolve) => bus.events.on("down", () => resolve()));
  await broker.close(); // a fresh broker on the same port: retained messages are gone
  await down;
  broker = new EmbeddedBroker({ ...opts, port });
  await broker.listen();
  broker.openToClients();
  await new Promise<void>((resolve) => bus.events.on("up", () => resolve()));

  const admin = await connectAsync(`mqtt://127.0.0.1:${port}`, { username: "admin", password: "a", reconnectPeriod: 0 });
  const state = await collect(admin, "edgelora/bridge/state");
  const m = await state.next(1);
  t.is(m.payload, "online");
  t.true(m.retain);
  const pinger = await connectAsync(`mqtt://127.0.0.1:${port}`, { username: daemon.username, password: daemon.password, reconnectPeriod: 0 });
  await pinger.publishAsync("edgelora/x/ping", "after restart", { qos: 1 });
  await until(() => got.length > 0, "the message on the resubscribed filter");
  t.deepEqual(got, ["after restart"], "resubscribed");
  await Promise.all([admin.endAsync(true), pinger.endAsync(true), bus.stop()]);
  await broker.close();
});
