import test from "ava";
import { canPublish, canSubscribe, isTenantReplyTopic } from "../../src/mqtt/acl.js";
import { collect, sleep, startTestBroker } from "../helpers/broker.js";

const alice = { kind: "tenant", name: "alice" } as const;
const admin = { kind: "admin" } as const;

test("acl rules", (t) => {
  t.true(canPublish(alice, "edgelora", "edgelora/alice/request"));
  t.false(canPublish(alice, "edgelora", "edgelora/bob/request"));
  t.false(canPublish(alice, "edgelora", "edgelora/alice/response"));
  t.true(canSubscribe(alice, "edgelora", "edgelora/alice/#"));
  t.true(canSubscribe(alice, "edgelora", "edgelora/alice/response"));
  for (const f of ["edgelora/+/response", "edgelora/#", "#", "edgelora/bob/response", "$share/g/edgelora/alice/response", "edgelora/alice"])
    t.false(canSubscribe(alice, "edgelora", f), f);
  t.true(canPublish(admin, "edgelora", "edgelora/bridge/request/health"));
  t.false(canPublish(admin, "edgelora", "edgelora/alice/request"));
  t.true(canSubscribe(admin, "edgelora", "edgelora/bridge/#"));
  t.false(canSubscribe(admin, "edgelora", "edgelora/alice/#"));
  t.true(isTenantReplyTopic("edgelora", "alice", "edgelora/alice/inbox/1"));
  t.false(isTenantReplyTopic("edgelora", "alice", "edgelora/bob/response"));
  t.false(isTenantReplyTopic("edgelora", "alice", "edgelora/alice/request"));
  t.false(isTenantReplyTopic("edgelora", "alice", "edgelora/alice/+"));
});

test("embedded broker refuses bad credentials", async (t) => {
  const b = await startTestBroker();
  try {
    await t.throwsAsync(b.connect("alice", "wrong"), { message: /Bad username or password|Not authorized/i });
    await t.throwsAsync(b.connect("mallory", "x"), { message: /Bad username or password|Not authorized/i });
    await t.throwsAsync(b.connect("alice", ""), { message: /Bad username or password|Not authorized/i });
    const ok = await b.connect("alice", "alice");
    t.true(ok.connected);
  } finally {
    await b.close();
  }
});

test("a tenant cannot read another's responses nor write another's request topic", async (t) => {
  const b = await startTestBroker();
  try {
    const daemon = await b.connect(b.daemon.username, b.daemon.password);
    const requests = await collect(daemon, "edgelora/+/request");
    const bob = await b.connect("bob", "bob");
    // mqtt.js rejects a SUBACK whose filters were all refused, with the granted codes attached.
    const denied = await t.throwsAsync(bob.subscribeAsync(["edgelora/alice/response", "edgelora/+/response", "#"], { qos: 1 }));
    t.deepEqual((denied as unknown as { packet: { granted: number[] } }).packet.granted, [128, 128, 128]);
    const own = await bob.subscribeAsync("edgelora/bob/#", { qos: 1 });
    t.is(own[0].qos, 1);

    // bob's publish to alice's request topic never reaches the daemon (aedes disconnects bob).
    const closed = new Promise<void>((resolve) => bob.once("close", () => resolve()));
    bob.publish("edgelora/alice/request", "sneaky", { qos: 0 });
    await closed;
    const alice = await b.connect("alice", "alice");
    await alice.publishAsync("edgelora/alice/request", "hello", { qos: 1 });
    const first = await requests.next(1);
    t.is(first.topic, "edgelora/alice/request");
    t.is(first.payload, "hello");
    await sleep(50);
    t.is(requests.got.length, 1);
  } finally {
    await b.close();
  }
});
