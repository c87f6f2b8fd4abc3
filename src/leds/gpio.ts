// An LED on a GPIO line through the `onoff` package (an optional dependency of the package, loaded
// only when this backend is configured). The daemon toggles the line itself to draw the patterns.
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Led, LedPattern } from "./types.js";

interface OnoffGpio {
  writeSync(value: 0 | 1): void;
  unexport(): void;
}
type OnoffGpioClass = new (gpio: number, direction: "out") => OnoffGpio;

/** Since kernel 6.6 the sysfs GPIO numbers of a chip start at its `base` (e.g. 571 for the Pi 5's
 *  pinctrl-rp1), not at 0: the global number is base + line offset. */
export async function resolveGpioNumber(offset: number, chipLabel: string, gpioRoot = "/sys/class/gpio"): Promise<number> {
  const chips = (await readdir(gpioRoot)).filter((d) => d.startsWith("gpiochip"));
  for (const chip of chips) {
    const label = (await readFile(join(gpioRoot, chip, "label"), "utf8").catch(() => "")).trim();
    if (label !== chipLabel) continue;
    const base = Number((await readFile(join(gpioRoot, chip, "base"), "utf8")).trim());
    return base + offset;
  }
  throw new Error(`no GPIO chip labelled ${JSON.stringify(chipLabel)} under ${gpioRoot} (found: ${chips.join(", ") || "none"})`);
}

// Heartbeat drawn in software: two short beats, then rest (ms, starting with on).
const HEARTBEAT = [70, 180, 70, 930];

export class GpioLed implements Led {
  private timer: NodeJS.Timeout | null = null;

  private constructor(private readonly line: OnoffGpio) {}

  static async open(offset: number, chipLabel: string, gpioRoot: string): Promise<GpioLed> {
    const moduleName = "onoff"; // a variable: optional, so the build must not require it
    let mod: { Gpio: OnoffGpioClass };
    try {
      mod = (await import(moduleName)) as { Gpio: OnoffGpioClass };
    } catch (err) {
      // onoff is an optional dependency: npm leaves it out where its epoll addon cannot be built.
      throw new Error(
        `leds.backend gpio needs the onoff package, which does not load here (${(err as Error).message.split("\n")[0]}): ` +
          "it installs with edgelora where a C++ compiler and python3 are; in a git checkout run `npm run build:gpio`",
      );
    }
    return new GpioLed(new mod.Gpio(await resolveGpioNumber(offset, chipLabel, gpioRoot), "out"));
  }

  async show(p: LedPattern): Promise<void> {
    this.stopTimer();
    switch (p.kind) {
      case "off":
        return this.line.writeSync(0);
      case "on":
        return this.line.writeSync(1);
      case "heartbeat":
        return this.cycle(HEARTBEAT);
      case "blink":
        return this.cycle([p.onMs, p.offMs]);
    }
  }

  async close(): Promise<void> {
    this.stopTimer();
    this.line.writeSync(0);
    this.line.unexport();
  }

  /** Alternates on/off with the given durations, forever. */
  private cycle(durations: number[]): void {
    let i = 0;
    const tick = () => {
      this.line.writeSync(i % 2 === 0 ? 1 : 0);
      const wait = durations[i % durations.length];
      i = (i + 1) % durations.length;
      this.timer = setTimeout(tick, wait).unref();
    };
    tick();
  }

  private stopTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
