// The two-phase forward between boards (src/fleet/forward.ts) over an in-memory bus whose messages
// move only when the test says: a request runs on exactly one board whatever the delays, and no
// board reads another's clock.
import test from "ava";
import type { DaemonContext } from "../../src/daemon/context.js";
import type { RequestPort } from "../../src/fleet/fleet.js";
import { fingerprint } from "../../src/fleet/adopt.js";
import { Forwarding } from "../../src/fleet/forward.js";
import type { BusMessage } from "../../src/mqtt/client.js";
import { matches } from "../../src/mqtt/match.js";
import { topics } from "../../src/mqtt/topics.js";

/** Boards' buses on one in-memory broker; published messages wait in `queue` until flush(). */
class Net {
  readonly queue: BusMessage[] = [];
  private readonly subs: { filter: string; handler: (m: BusMessage) => void }[] = [];

  bus() {
    return {
      subscribe: async (filter: string, handler: (m: BusMessage) => void) => void this.subs.push({ filter, handler }),
      publish: async (topic: string, payload: string) => void this.queue.push({ topic, payload: Buffer.from(payload), qos: 1, dup: false }),
    };
  }

  /** Delivers what is queued now (not what that publishes). */
  flush(): void {
    for (const m of this.queue.splice(0)) for (const s of this.subs) if (matches(s.filter, m.topic)) s.handler(m);
  }
}

function board(net: Net, id: string, serving = true) {
  const ctx = { bus: net.bus(), topics: topics("edgelora"), boardId: id, config: { fleet: { forward_timeout_ms: 40 } } } as unknown as DaemonContext;
  const ran: BusMessage[] = [];
  const requests: RequestPort = { serving, inject: (msg) => void ran.push(msg), cancel: () => false };
  return { fwd: new Forwarding(ctx, requests), ran, requests };
}

const request: BusMessage = { topic: "edgelora/t0/request", payload: Buffer.from('{"prompt":"hi","transaction":"x"}'), qos: 1, dup: false };

async function twoBoards() {
  const net = new Net();
  const a = board(net, "a");
  const b = board(net, "b");
  await a.fwd.start();
  await b.fwd.start();
  return { net, a, b };
}

test("accepted and committed: the peer runs it once and the sender hands it over", async (t) => {
  const { net, a, b } = await twoBoards();
  const handedOver = a.fwd.offer("b", request);
  net.flush(); // forward -> b holds it, answers ok
  t.deepEqual(b.ran, [], "held, not run, before the commit");
  net.flush(); // ok -> a commits
  net.flush(); // commit -> b runs it, says running
  net.flush(); // running -> a
  t.true(await handedOver);
  t.is(b.ran.length, 1);
  t.is(b.ran[0].payload.toString(), request.payload.toString());
  t.deepEqual(a.ran, []);
});

test("an answer after the sender's timeout gets no commit: the sender runs it, the peer never does", async (t) => {
  const { net, a, b } = await twoBoards();
  const handedOver = a.fwd.offer("b", request);
  t.false(await handedOver, "nothing came back in time"); // the forward is still queued
  net.flush(); // the late forward -> b holds it, answers ok
  net.flush(); // ok for an offer that is over: no commit
  t.is(net.queue.length, 0, "no commit sent");
  t.deepEqual(b.ran, []);
});

test("a peer that does not serve refuses; a commit for a request it no longer holds is answered not running", async (t) => {
  const net = new Net();
  const a = board(net, "a");
  const b = board(net, "b", false);
  await a.fwd.start();
  await b.fwd.start();
  const refused = a.fwd.offer("b", request);
  net.flush();
  net.flush();
  t.false(await refused);

  // b drops what it holds (it stopped) between its answer and the commit.
  const net2 = new Net();
  const c = board(net2, "c");
  const d = board(net2, "d");
  await c.fwd.start();
  await d.fwd.start();
  const offered = c.fwd.offer("d", request);
  net2.flush(); // d holds it, answers ok
  d.fwd.stop();
  net2.flush(); // c commits
  net2.flush(); // d: not held -> running false
  net2.flush();
  t.false(await offered);
  t.deepEqual(d.ran, []);
});

test("the peer goes offline after the commit: handed over only when its ledger had the request", async (t) => {
  for (const inLedger of [true, false]) {
    const { net, a } = await twoBoards();
    const handedOver = a.fwd.offer("b", request);
    net.flush(); // b holds, answers ok
    net.flush(); // a commits
    a.fwd.peerDown("b", new Set(inLedger ? [fingerprint(request)] : []));
    t.is(await handedOver, inLedger, inLedger ? "failover runs it from b's ledger" : "a runs it");
  }
});
