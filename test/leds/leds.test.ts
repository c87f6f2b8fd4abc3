import test from "ava";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SysfsLed } from "../../src/leds/sysfs.js";
import { resolveGpioNumber } from "../../src/leds/gpio.js";
import { patternFor, PATTERNS } from "../../src/leds/status.js";

function ledDir() {
  const root = mkdtempSync(join(tmpdir(), "edgelora-leds-"));
  mkdirSync(join(root, "led0"));
  writeFileSync(join(root, "led0", "max_brightness"), "255\n");
  const read = (f: string) => readFileSync(join(root, "led0", f), "utf8");
  return { root, read };
}

test("sysfs backend writes trigger/brightness/delays per health state", async (t) => {
  const { root, read } = ledDir();
  const led = new SysfsLed(root, "led0");
  const healthy = { modelFailed: false, brokerDown: false, overloaded: false, busy: false };

  await led.show(patternFor(healthy));
  t.is(read("trigger"), "heartbeat");

  await led.show(patternFor({ ...healthy, busy: true }));
  t.is(read("trigger"), "none");
  t.is(read("brightness"), "255");

  await led.show(patternFor({ ...healthy, busy: true, brokerDown: true }));
  t.deepEqual([read("trigger"), read("delay_on"), read("delay_off")], ["timer", "100", "100"]);

  await led.show(patternFor({ ...healthy, overloaded: true }));
  t.deepEqual([read("trigger"), read("delay_on"), read("delay_off")], ["timer", "100", "900"]);

  await led.show(patternFor({ ...healthy, brokerDown: true, modelFailed: true }));
  t.deepEqual([read("trigger"), read("delay_on"), read("delay_off")], ["timer", "1000", "1000"]);

  await led.close();
  t.deepEqual([read("trigger"), read("brightness")], ["none", "0"]);
});

test("distinct conditions have distinct patterns", (t) => {
  const seen = new Set(Object.values(PATTERNS).map((p) => JSON.stringify(p)));
  t.is(seen.size, Object.keys(PATTERNS).length);
});

test("gpio number = chip base + offset, found by label (kernel 6.6+ numbering)", async (t) => {
  const root = mkdtempSync(join(tmpdir(), "edgelora-gpio-"));
  for (const [chip, label, base] of [["gpiochip512", "gpio-brcmstb@107d508500", "512"], ["gpiochip571", "pinctrl-rp1", "571"]]) {
    mkdirSync(join(root, chip));
    writeFileSync(join(root, chip, "label"), `${label}\n`);
    writeFileSync(join(root, chip, "base"), `${base}\n`);
  }
  t.is(await resolveGpioNumber(17, "pinctrl-rp1", root), 588);
  await t.throwsAsync(resolveGpioNumber(17, "pinctrl-bcm2711", root), { message: /no GPIO chip labelled/ });
});
