import test from "ava";
import { TextStream } from "../src/scheduler/text.js";

const bytes = (s: string) => new TextEncoder().encode(s);

test("incomplete UTF-8 is held until its last byte arrives", (t) => {
  const text = new TextStream([]);
  const euro = bytes("€");
  t.is(text.push(euro.subarray(0, 1)), "");
  t.is(text.push(euro.subarray(1, 2)), "");
  t.is(text.push(euro.subarray(2)), "€");
  t.is(text.push(bytes("x")), "x");
  t.is(text.flush(), "");
  t.is(text.value, "€x");
});

test("the longest possible stop prefix is held back; the earliest complete stop wins", (t) => {
  const text = new TextStream(["abc", "bd"]);
  t.is(text.push(bytes("xa")), "x");
  t.is(text.push(bytes("b")), "", "'ab' could start 'abc', 'b' could start 'bd'");
  t.is(text.push(bytes("x")), "abx");
  t.is(text.push(bytes("abd")), "a", "'bd' completes first");
  t.true(text.stopped);
  t.is(text.value, "xabxa");
  t.is(text.push(bytes("more")), "");
  t.is(text.flush(), "");
});

test("a stop string inside one piece cuts the piece", (t) => {
  const text = new TextStream(["STOP", ""]);
  t.is(text.push(bytes("go STOP now")), "go ");
  t.is(text.value, "go ");
});

test("flush releases a held prefix and a broken UTF-8 tail", (t) => {
  const text = new TextStream(["end"]);
  t.is(text.push(bytes("the en")), "the ");
  t.is(text.push(bytes("€").subarray(0, 2)), "", "no new character yet: 'en' stays held");
  t.is(text.flush(), "en\uFFFD");
  t.is(text.value, "the en\uFFFD");
});
