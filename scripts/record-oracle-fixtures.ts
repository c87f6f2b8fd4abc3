// Records llama.cpp's outputs (node-llama-cpp 3.21.1, x86 only) for the cases of
// test/helpers/recorded-cases.ts into test/fixtures/llama-cpp-recorded.json: greedy ids and, per
// position, the log-probabilities of the path token and llama.cpp's top 5. The checked-in file lets
// the engine be compared with llama.cpp where llama.cpp does not run (arm64 under qemu).
// Run: npm run fixtures:oracle (after changing the cases or the generators).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { NativeModel } from "../src/engine/model.js";
import { Oracle } from "../test/helpers/oracle.js";
import { storiesPath } from "../test/helpers/engine.js";
import { writeTestAdapter } from "../test/helpers/lora.js";
import {
  caseModel, ENGINE_CASES, FIXTURE_FILE, LORA_CASES, LORA_N, LORA_PROMPTS, loraCaseName, recordRow, sha256Of,
  type RecordedFixtures, type RecordedRun,
} from "../test/helpers/recorded-cases.js";

const dir = mkdtempSync(join(tmpdir(), "edgelora-record-"));
try {
  const engine: RecordedRun[] = [];
  for (const c of ENGINE_CASES) {
    const path = await caseModel(c, dir);
    if (!path) throw new Error("../shared/models/stories260K.gguf is absent: the fixtures need it");
    const oracle = await Oracle.load(path);
    try {
      // BOS as the model's metadata asks (none for the qwen2 vocabulary), read by the engine.
      const native = await NativeModel.load(path);
      const addBos = native.info.addBos;
      native.dispose();
      const prompt = oracle.tokenize(c.prompt ?? "", c.prompt === null || addBos);
      const greedy = await oracle.greedy(prompt, c.nGreedy);
      const path2 = [...prompt, ...greedy];
      const rows = (await oracle.nextLogprobs(path2)).map((full, i) => recordRow(full, path2[i + 1]));
      engine.push({ name: c.name, sha256: sha256Of(path), prompt, greedy, rows });
      process.stderr.write(`recorded ${c.name}: ${greedy.length} ids, ${rows.length} rows\n`);
    } finally {
      await oracle.dispose();
    }
  }

  const stories = storiesPath()!;
  const oracle = await Oracle.load(stories);
  const lora: RecordedRun[] = [];
  try {
    for (const c of LORA_CASES) {
      const prompt = oracle.tokenize(LORA_PROMPTS[c.prompt], true);
      const a = c.adapter ? await writeTestAdapter(stories, dir, c.adapter) : null;
      const adapter = a ? { filePath: a.ggufPath, scale: c.scale } : null;
      const greedy = await oracle.greedy(prompt, LORA_N, adapter);
      const full = (await oracle.nextLogprobs([...prompt, ...greedy], adapter)).slice(prompt.length - 1);
      const rows = full.map((m, k) => recordRow(m, greedy[k]));
      lora.push({ name: loraCaseName(c), sha256: sha256Of(a ? a.path : stories), prompt, greedy, rows });
      process.stderr.write(`recorded ${loraCaseName(c)}\n`);
    }
  } finally {
    await oracle.dispose();
  }

  const out: RecordedFixtures = {
    recordedWith: "llama.cpp through node-llama-cpp 3.21.1 on linux-x64: F32 KV cache, no flash attention, one token per decode",
    engine,
    lora,
  };
  // One line per run: diffs of a re-recording show which runs moved.
  const runs = (list: RecordedRun[]) => `[\n${list.map((r) => `  ${JSON.stringify(r)}`).join(",\n")}\n ]`;
  writeFileSync(FIXTURE_FILE, `{\n "recordedWith": ${JSON.stringify(out.recordedWith)},\n "engine": ${runs(engine)},\n "lora": ${runs(lora)}\n}\n`);
  process.stderr.write(`wrote ${FIXTURE_FILE}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
