// Slot images through the addon (StepEngine.exportAdapter / importAdapter) on stories260K: an image
// imported into another slot gives the logits of the file loaded there, and images for another pool
// type or cut short are refused with the engine's message, leaving the slot free.
import test from "ava";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NativeEngine } from "../src/engine/engine.js";
import { writeSyntheticAdapter } from "../src/lora/synthetic.js";
import { storiesPath } from "./helpers/engine.js";

const model = storiesPath();
const open = (pool: "f16" | "q8") =>
  NativeEngine.open(model!, { loraSlots: 2, loraMaxRank: 8, loraPoolType: pool, threads: 1, nCtx: 64, nSeqMax: 2, nBatchMax: 16, kvType: "f32" });

test("exportAdapter / importAdapter: same logits as the file; another pool's or a cut image is refused", async (t) => {
  if (!model) return t.pass("SKIP: ../shared/models/stories260K.gguf not found");
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-img-")), "a.gguf");
  await writeSyntheticAdapter({ model, out: file, format: "gguf", rank: 8, alpha: 8, seed: 3, strength: 2 });
  const f16 = await open("f16");
  const q8 = await open("q8");
  try {
    const loaded = await f16.loadAdapter(0, file);
    const image = f16.exportAdapter(0);
    t.true(Buffer.isBuffer(image) && image.length > loaded.bytes);
    const imported = await f16.importAdapter(1, image);
    t.deepEqual({ ...imported, slot: 0 }, loaded);
    const prompt = [1, 403, 407, 261, 378];
    const logits = async (slot: number) =>
      Array.from((await f16.context.decode(
        { tokens: prompt, pos: prompt.map((_, i) => i), seq: prompt.map(() => slot), loraSlot: prompt.map(() => slot) }, [null],
      )).logits);
    t.deepEqual(await logits(1), await logits(0), "bit-identical logits");
    await t.throwsAsync(q8.importAdapter(0, image), { message: /made for a f16 pool, this pool is q8/ });
    await t.throwsAsync(f16.importAdapter(0, image.subarray(0, image.length - 1)), { message: /truncated/ });
    t.throws(() => q8.exportAdapter(1), { message: /no adapter loaded/ });
    t.is(q8.context.adapterSlot(0).loaded, false);
  } finally {
    f16.dispose();
    q8.dispose();
  }
});
