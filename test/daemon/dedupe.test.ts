// Dedupe on the daemon's clock: a copy of a running request is dropped, one of a request answered
// within the TTL gets the same reply, and after the TTL (or a forget) it runs again.
import test from "ava";
import { Dedupe } from "../../src/daemon/dedupe.js";
import { FakeClock } from "../helpers/fake-clock.js";

test("running, replayed within the TTL, new again after it; the oldest answers go past capacity", (t) => {
  const clock = new FakeClock();
  const d = new Dedupe<string>(clock, 2, 1000);
  t.is(d.check("a/1"), "new");
  t.is(d.check("a/1"), "running");
  d.finish("a/1", "reply 1");
  clock.advance(1000);
  t.deepEqual(d.check("a/1"), { reply: "reply 1" }, "at the TTL: still the earlier reply");
  clock.advance(1);
  t.is(d.check("a/1"), "new", "past the TTL: runs again");
  d.forget("a/1");
  t.is(d.check("a/1"), "new", "forgotten while running: may be sent again");
  d.finish("a/1", "x");
  for (const k of ["b/1", "c/1"]) {
    t.is(d.check(k), "new");
    d.finish(k, k);
  }
  t.is(d.check("a/1"), "new", "capacity 2: the oldest answer was dropped");
});
