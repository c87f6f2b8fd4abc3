// The warm tier in a directory on a real zram device (hw/zram-warm.sh on /dev/zram0): requests
// cycling through more adapters than slots come back from the zram directory and answer as they did
// when loaded from their files. Skips, saying why, where there is no free /dev/zram0 or no root;
// the device is reset afterwards.
import test from "ava";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectAsync } from "mqtt";
import { packageRoot } from "../../src/engine/native.js";
import { writeSyntheticAdapter } from "../../src/lora/synthetic.js";
import { hashPassword } from "../../src/mqtt/password.js";
import { storiesPath } from "../helpers/engine.js";
import { localConfig } from "../helpers/local-config.js";
import { until } from "../helpers/broker.js";
import { FAST, Inbox, startRealDaemon } from "../e2e/harness.js";

const DEVICE = "/dev/zram0";
const SCRIPT = join(packageRoot(), "hw", "zram-warm.sh");

function whyNot(): string | null {
  if (!storiesPath()) return "../shared/models/stories260K.gguf not found";
  if (process.getuid?.() !== 0) return "not root";
  if (!existsSync(DEVICE)) return `${DEVICE} does not exist`;
  if (readFileSync("/sys/block/zram0/disksize", "utf8").trim() !== "0") return `${DEVICE} is in use`;
  try {
    execFileSync("mkfs.ext4", ["-V"], { stdio: "ignore" });
  } catch {
    return "mkfs.ext4 is not installed";
  }
  return null;
}

test.serial("warm tier in a zram directory: slot images round-trip, answers equal the answers from the files", async (t) => {
  const skip = whyNot();
  if (skip) return t.pass(`SKIP: ${skip}`);
  const model = storiesPath()!;
  const root = mkdtempSync(join(tmpdir(), "edgelora-zram-"));
  const mnt = join(root, "warm");
  const adapters = join(root, "adapters");
  mkdirSync(adapters);
  for (let i = 0; i < 12; i++) await writeSyntheticAdapter({ model, out: join(adapters, `z${i}.gguf`), format: "gguf", rank: 4, alpha: 8, seed: 300 + i, strength: 2 });
  execFileSync("bash", [SCRIPT, "start", DEVICE, "16M", "lzo-rle", mnt, "root"], { stdio: "ignore" });
  try {
    const c = localConfig({ model: model!, dataDir: join(root, "data"), threads: 1, nCtx: 128, loraSlots: 2, loraMaxRank: 8 });
    c.adapters.directory = adapters;
    c.adapters.warm = { backend: "directory", directory: mnt, budget_mb: 8, compression: "none", policy: "lfu" };
    c.tenants = { u: { password_hash: await hashPassword("u", FAST), adapters: ["*"], default_adapter: null } };
    const daemon = await startRealDaemon(c);
    const client = await connectAsync(`mqtt://127.0.0.1:${daemon.controller.brokerPort}`, { username: "u", password: "u", reconnectPeriod: 0 });
    try {
      const inbox = new Inbox(client);
      await client.subscribeAsync("edgelora/u/response", { qos: 1 });
      const ask = async (adapter: string, transaction: string) => {
        await client.publishAsync("edgelora/u/request", JSON.stringify({ prompt: "Once upon a time", adapter, transaction, max_tokens: 10, temperature: 0 }), { qos: 1 });
        return inbox.reply(transaction);
      };
      const first = new Map<string, string>();
      for (let i = 0; i < 12; i++) first.set(`z${i}`, (await ask(`z${i}`, `first-${i}`)).text!);
      // Exclusive tiers: the 2 adapters in slots have no image; every other one has (the last images
      // are written in the background: waited for, not a fixed time).
      const slotFiles = () => readdirSync(mnt).filter((f) => f.endsWith(".slot")).sort();
      await until(() => slotFiles().length >= 10, "the images of the 10 adapters not in a slot", 30_000);
      const images = slotFiles();
      const away = [...first.keys()].filter((n) => daemon.controller.context.slots!.tier!(n) !== "hot");
      t.is(away.length, 10);
      t.deepEqual(images, away.map((n) => `${n}.slot`).sort(), "every adapter not in a slot has an image in the zram directory");
      for (let i = 0; i < 12; i++) t.is((await ask(`z${i}`, `again-${i}`)).text, first.get(`z${i}`), `z${i} from zram answers as from its file`);
      const st = daemon.controller.context.slots!.stats();
      t.is(st.warm!.backend, "directory");
      t.true(st.hits.warm >= 10, `warm hits ${st.hits.warm}`);
      const [orig, compr] = readFileSync("/sys/block/zram0/mm_stat", "utf8").trim().split(/\s+/).map(Number);
      t.log(`zram0 (lzo-rle): ${orig} bytes stored as ${compr} (${(orig / Math.max(1, compr)).toFixed(2)}x), images ${st.warm!.imageBytes} bytes`);
      t.true(orig > 0);
    } finally {
      await client.endAsync(true);
      await daemon.stop();
    }
  } finally {
    execFileSync("bash", [SCRIPT, "stop", DEVICE, mnt], { stdio: "ignore" });
    rmSync(root, { recursive: true, force: true });
  }
  t.is(readFileSync("/sys/block/zram0/disksize", "utf8").trim(), "0", "the device is reset");
});
