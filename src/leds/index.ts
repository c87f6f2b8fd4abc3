// Picks the LED backend named in the config.
import type { Config } from "../config/schema.js";
import { GpioLed } from "./gpio.js";
import { NoLed } from "./none.js";
import { SysfsLed } from "./sysfs.js";
import type { Led } from "./types.js";

export async function openStatusLed(cfg: Config["leds"]): Promise<Led> {
  if (cfg.backend === "none" || cfg.status === null) return new NoLed();
  if (cfg.backend === "sysfs") return new SysfsLed(cfg.sysfs_root, cfg.status);
  const offset = Number(cfg.status);
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`leds.status: a GPIO line offset is needed, got ${JSON.stringify(cfg.status)}`);
  return GpioLed.open(offset, cfg.gpio_chip_label, cfg.gpio_root);
}

export type { Led, LedPattern } from "./types.js";
export { NoLed } from "./none.js";
export { patternFor, PATTERNS, type HealthState } from "./status.js";
