import test from "ava";
import { ChunkCoalescer } from "../../src/daemon/stream-chunks.js";

function collector(intervalMs: number, maxPieces: number) {
  const sent: [string, number][] = [];
  return { sent, c: new ChunkCoalescer({ intervalMs, maxPieces }, (d, s) => sent.push([d, s])) };
}

test("the first piece goes out at once, later ones per maxPieces, the rest on flush", (t) => {
  const { sent, c } = collector(60_000, 3);
  c.push("a");
  t.deepEqual(sent, [["a", 0]]);
  for (const p of ["b", "", "c", "d", "e", "f", "g", "h"]) c.push(p);
  t.deepEqual(sent, [["a", 0], ["bcd", 1], ["efg", 2]]);
  c.flush();
  c.flush(); // nothing left: no empty chunk
  t.deepEqual(sent, [["a", 0], ["bcd", 1], ["efg", 2], ["h", 3]]);
});

test("gathered pieces go out when the interval is up", async (t) => {
  const { sent, c } = collector(20, 100);
  c.push("x");
  c.push("y");
  c.push("z");
  t.deepEqual(sent, [["x", 0]]);
  await new Promise((resolve) => setTimeout(resolve, 200));
  t.deepEqual(sent, [["x", 0], ["yz", 1]]);
});

test("interval 0 sends every piece as its own chunk", (t) => {
  const { sent, c } = collector(0, 100);
  for (const p of ["a", "b", "c"]) c.push(p);
  t.deepEqual(sent, [["a", 0], ["b", 1], ["c", 2]]);
});
