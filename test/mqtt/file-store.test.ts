// The outgoing store file (src/mqtt/file-store.ts): what survives a restart, and a torn last line.
import test from "ava";
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Packet } from "mqtt";
import { FileStore } from "../../src/mqtt/file-store.js";
import { quietLogger } from "../helpers/broker.js";

const file = () => join(mkdtempSync(join(tmpdir(), "edgelora-store-")), "outgoing.store");
const publish = (messageId: number, text: string, qos: 1 | 2 = 2): Packet => ({
  cmd: "publish", topic: "edgelora/t0/response", payload: Buffer.from(text), qos, messageId, dup: false, retain: false,
  properties: { correlationData: Buffer.from([0, 255, 7]) },
});
const held = (store: FileStore): Promise<Packet[]> =>
  new Promise((resolve, reject) => {
    const got: Packet[] = [];
    const s = store.createStream();
    s.on("data", (p: Packet) => got.push(p));
    s.on("end", () => resolve(got));
    s.on("error", reject);
  });

test("QoS 2 publishes and PUBRELs are restored after a restart, with their Buffers; QoS 1 ones are not", async (t) => {
  const f = file();
  const a = new FileStore(f, quietLogger);
  a.put(publish(5, "five"));
  a.put(publish(6, "six", 1)); // memory only
  a.put(publish(9, "nine"));
  a.put({ cmd: "pubrel", messageId: 9 }); // the broker's PUBREC arrived: the PUBLISH is replaced
  a.put(publish(11, "eleven"));
  a.del({ messageId: 11 }, () => undefined);
  t.deepEqual((await held(a)).map((p) => p.messageId), [5, 6, 9, 11].filter((id) => id !== 11));
  // No close(): as after a SIGKILL.
  const b = new FileStore(f, quietLogger);
  t.deepEqual(b.ids, [5, 9]);
  const [five, nine] = await held(b);
  t.is(five.cmd, "publish");
  if (five.cmd !== "publish") return;
  t.true(Buffer.isBuffer(five.payload));
  t.is(five.payload.toString(), "five");
  t.deepEqual(five.properties?.correlationData, Buffer.from([0, 255, 7]));
  t.is(five.qos, 2);
  t.deepEqual(nine, { cmd: "pubrel", messageId: 9 });
  t.true(b.heldAtOpen("edgelora/t0/response", "five"));
  t.true(b.heldAtOpen("edgelora/t0/response", "nine"), "a PUBREL: the broker already has that reply");
  t.false(b.heldAtOpen("edgelora/t0/response", "eleven"), "completed in the last run");
  // Opening compacted the file to what is held: 5, and 9's PUBREL after the PUBLISH it replaced.
  t.deepEqual(readFileSync(f, "utf8").trim().split("\n").map((l) => (JSON.parse(l) as { packet: { cmd: string; messageId: number } }).packet).map((p) => `${p.cmd} ${p.messageId}`), ["publish 5", "publish 9", "pubrel 9"]);
  b.del({ messageId: 5 }, () => undefined);
  t.true(b.heldAtOpen("edgelora/t0/response", "five"), "still after it is completed in this run");
  b.close();
});

test("a line cut short by a kill is skipped, the rest kept; get and del answer a missing id with an error", async (t) => {
  const f = file();
  const a = new FileStore(f, quietLogger);
  a.put(publish(1, "one"));
  a.close();
  appendFileSync(f, '{"op":"put","packet":{"cmd":"publish","topic":"edgelora/t0/resp');
  const b = new FileStore(f, quietLogger);
  t.deepEqual(b.ids, [1]);
  const err = await new Promise<Error | undefined>((resolve) => b.get({ messageId: 2 }, (e) => resolve(e)));
  t.regex(err?.message ?? "", /missing packet/);
  const delErr = await new Promise<Error | undefined>((resolve) => b.del({ messageId: 2 }, (e) => resolve(e)));
  t.regex(delErr?.message ?? "", /missing packet/);
  const got = await new Promise<Packet | undefined>((resolve) => b.del({ messageId: 1 }, (_e, p) => resolve(p)));
  t.is(got?.messageId, 1);
  b.close();
  t.deepEqual(new FileStore(f, quietLogger).ids, []);
});

test("a broker that lost the session gets the PUBLISH behind each held PUBREL again, also after a restart", async (t) => {
  const f = file();
  const a = new FileStore(f, quietLogger);
  a.put(publish(3, "three"));
  a.put({ cmd: "pubrel", messageId: 3 });
  a.put(publish(4, "four"));
  const b = new FileStore(f, quietLogger); // killed; the next run opens (and compacts) the file
  t.deepEqual((await held(b)).map((p) => p.cmd), ["pubrel", "publish"]);
  const c = new FileStore(f, quietLogger); // compaction kept the PUBLISH behind the PUBREL
  t.is(c.sessionLost(), 1);
  const [three, four] = await held(c);
  t.is(three.cmd, "publish");
  t.is(three.cmd === "publish" ? three.payload.toString() : "", "three");
  t.is(four.messageId, 4);
  t.is(c.sessionLost(), 0, "once");
  t.deepEqual((await held(new FileStore(f, quietLogger))).map((p) => p.cmd), ["publish", "publish"]);
});
