import test from "ava";
import { appendFileSync, mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RequestJournal } from "../../src/daemon/journal.js";
import type { BusMessage } from "../../src/mqtt/client.js";
import { quietLogger } from "../helpers/broker.js";

const msg = (tenant: string, body: string, extra: Partial<BusMessage> = {}): BusMessage => ({
  topic: `edgelora/${tenant}/request`, payload: Buffer.from(body), qos: 1, dup: false, ...extra,
});

test("pending requests survive a restart with their reply route; done ones and torn lines do not", (t) => {
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-journal-")), "requests.journal");
  const j = new RequestJournal(file, quietLogger);
  t.deepEqual(j.open(), []);
  j.record("alice/1", msg("alice", '{"prompt":"a","transaction":1}', { responseTopic: "edgelora/alice/inbox", correlationData: Buffer.from([1, 2, 3]) }));
  j.record("bob/2", msg("bob", "plain prompt"));
  j.record("bob/3", msg("bob", '{"prompt":"c","transaction":3}'));
  j.record("bob/3", msg("bob", "a copy is not recorded twice"));
  j.done("bob/2");
  // Not closed: what a killed process leaves, plus half a line written as it died.
  appendFileSync(file, '{"op":"req","key":"carol/9","topic":"edgel');

  const again = new RequestJournal(file, quietLogger);
  const pending = again.open();
  t.deepEqual(pending.map((p) => p.key), ["alice/1", "bob/3"]);
  const [a, b] = pending.map((p) => p.msg);
  t.is(a.topic, "edgelora/alice/request");
  t.is(a.payload.toString(), '{"prompt":"a","transaction":1}');
  t.is(a.responseTopic, "edgelora/alice/inbox");
  t.deepEqual([...a.correlationData!], [1, 2, 3]);
  t.is(b.payload.toString(), '{"prompt":"c","transaction":3}');
  t.is(b.responseTopic, undefined);
  // Opening rewrote the file with only what is pending.
  t.is(readFileSync(file, "utf8").trim().split("\n").length, 2);
  // Run again: alice/1 is accepted again under its key; bob/3 was not (a plain-text request gets a new key).
  again.record("alice/1", a);
  again.replayDone();
  again.close();
  const third = new RequestJournal(file, quietLogger);
  t.deepEqual(third.open().map((p) => p.key), ["alice/1"], "still pending until answered");
  third.record("alice/1", a);
  third.replayDone();
  third.done("alice/1");
  third.close();
  t.deepEqual(new RequestJournal(file, quietLogger).open(), []);
});

test("a journal that cannot be written turns itself off and keeps answering calls", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-journal-"));
  const file = join(dir, "requests.journal");
  symlinkSync("/dev/full", `${file}.tmp`);
  const j = new RequestJournal(file, quietLogger);
  t.deepEqual(j.open(), []);
  t.notThrows(() => j.record("a/1", msg("a", "x")));
  t.notThrows(() => j.done("a/1"));
  j.close();
});

test("a request whose reply was written but not marked done comes back with that reply, through a compaction", (t) => {
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-journal-")), "requests.journal");
  const j = new RequestJournal(file, quietLogger);
  j.open();
  j.record("alice/1", msg("alice", '{"prompt":"a","transaction":1}'));
  j.record("bob/2", msg("bob", '{"prompt":"b","transaction":2}'));
  j.record("carol/3", msg("carol", '{"prompt":"c","transaction":3}'));
  // alice/1: killed between the reply's socket write and the done mark; bob/2: answered; carol/3: running.
  j.replying("alice/1", { topic: "edgelora/alice/inbox", correlationData: Buffer.from([7]) }, { transaction: "1", status: "ok", text: "once" });
  j.replying("bob/2", { topic: "edgelora/bob/response" }, { transaction: "2", status: "ok", text: "twice" });
  j.done("bob/2");
  j.close();

  const again = new RequestJournal(file, quietLogger);
  const pending = again.open(); // rewrites the file: the reply record must survive it
  again.close();
  for (const journal of [pending, new RequestJournal(file, quietLogger).open()]) {
    t.deepEqual(journal.map((p) => p.key), ["alice/1", "carol/3"]);
    const [alice, carol] = journal;
    t.is(alice.reply?.topic, "edgelora/alice/inbox");
    t.deepEqual(JSON.parse(alice.reply!.payload), { transaction: "1", status: "ok", text: "once" });
    t.deepEqual([...alice.reply!.correlationData!], [7]);
    t.is(carol.reply, undefined, "no reply written: run again");
  }
});
