// Linux LED class: /sys/class/leds/<name>/{trigger,brightness,delay_on,delay_off}. The kernel's
// own triggers (heartbeat, timer) blink the LED, so no timer runs in the daemon. The root
// directory is configurable so tests can point it at a temp dir.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Led, LedPattern } from "./types.js";

export class SysfsLed implements Led {
  private readonly dir: string;

  constructor(root: string, name: string) {
    this.dir = join(root, name);
  }

  async show(p: LedPattern): Promise<void> {
    switch (p.kind) {
      case "off":
        await this.write("trigger", "none");
        return this.write("brightness", "0");
      case "on":
        await this.write("trigger", "none");
        return this.write("brightness", await this.maxBrightness());
      case "heartbeat":
        return this.write("trigger", "heartbeat");
      case "blink":
        // delay_on/delay_off appear once the timer trigger is set.
        await this.write("trigger", "timer");
        await this.write("delay_on", String(p.onMs));
        return this.write("delay_off", String(p.offMs));
    }
  }

  async close(): Promise<void> {
    await this.show({ kind: "off" });
  }

  private async maxBrightness(): Promise<string> {
    try {
      return (await readFile(join(this.dir, "max_brightness"), "utf8")).trim();
    } catch {
      return "1";
    }
  }

  private write(file: string, value: string): Promise<void> {
    return writeFile(join(this.dir, file), value);
  }
}
