// The engine's tokenizers against llama.cpp (node-llama-cpp) on the same GGUF files: token
// ids for every string of test/fixtures/tokenizer-corpus.json, with and without parsing
// special tokens, for stories260K (SentencePiece) and synthetic byte-level BPE models of the
// Llama 3 and Qwen2 families; plus BOS handling and decode round trips.
import test, { type ExecutionContext } from "ava";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getLlama, LlamaLogLevel, type LlamaModel } from "node-llama-cpp";

import { NativeModel } from "../src/engine/model.js";
import { packageRoot } from "../src/engine/native.js";
import { writeSyntheticModel } from "../src/gguf/synthetic.js";
import { spmVocab, TokenType } from "../src/gguf/vocab.js";

const root = packageRoot();
const corpus: string[] = JSON.parse(readFileSync(join(root, "test", "fixtures", "tokenizer-corpus.json"), "utf8"));
const stories = join(root, "..", "shared", "models", "stories260K.gguf");
const dir = mkdtempSync(join(tmpdir(), "edgelora-tok-"));

const llama = getLlama({ gpu: false, build: "never", usePrebuiltBinaries: true, skipDownload: true, logLevel: LlamaLogLevel.error });

async function oracle(path: string): Promise<LlamaModel> {
  return (await llama).loadModel({ modelPath: path, vocabOnly: true });
}

interface Case {
  name: string;
  path: () => Promise<string>;
  spm: boolean;
  requires?: string; // a shared file the case cannot run without
  userDefined?: string[]; // texts of user-defined tokens (they split even without parseSpecial)
}

const spm = spmVocab();

const cases: Case[] = [
  { name: "stories260K (SPM)", path: async () => stories, spm: true, requires: stories },
  {
    name: "synthetic SPM",
    path: async () => (await writeSyntheticModel({ arch: "llama", type: "f32", vocab: "spm", out: join(dir, "spm.gguf") })).path,
    spm: true,
    userDefined: spm.tokens.filter((_, i) => spm.types[i] === TokenType.userDefined),
  },
  {
    name: "synthetic BPE llama-bpe",
    path: async () => (await writeSyntheticModel({ arch: "llama", type: "f32", vocab: "bpe", out: join(dir, "llama-bpe.gguf") })).path,
    spm: false,
  },
  {
    name: "synthetic BPE qwen2",
    path: async () => (await writeSyntheticModel({ arch: "qwen2", type: "f32", vocab: "bpe", out: join(dir, "qwen2.gguf") })).path,
    spm: false,
  },
];

function sameIds(t: ExecutionContext, ours: number[], theirs: number[], what: string): boolean {
  const equal = ours.length === theirs.length && ours.every((id, i) => id === theirs[i]);
  if (!equal) t.fail(`${what}: ours ${JSON.stringify(ours)}, llama.cpp ${JSON.stringify(theirs)}`);
  return equal;
}

test("the corpus covers at least 200 strings", (t) => {
  t.true(corpus.length >= 200);
});

for (const c of cases) {
  test.serial(`token ids equal llama.cpp's: ${c.name}`, async (t) => {
    if (c.requires && !existsSync(c.requires)) {
      t.log(`skipped: ${c.requires} not found`);
      t.pass();
      return;
    }
    const path = await c.path();
    const ours = await NativeModel.load(path);
    const theirs = await oracle(path);
    try {
      let mismatches = 0;
      for (const text of corpus) {
        for (const parseSpecial of [false, true]) {
          const what = `${JSON.stringify(text)} parseSpecial=${parseSpecial}`;
          if (!sameIds(t, ours.tokenize(text, false, parseSpecial), Array.from(theirs.tokenize(text, parseSpecial)), what)) {
            if (++mismatches >= 10) return;
          }
        }
      }

      // addSpecial prepends BOS exactly when llama.cpp would.
      const bos = theirs.tokens.bos;
      const plain = ours.tokenize("Hello world", false);
      const expected = theirs.tokens.shouldPrependBosToken && bos !== null ? [bos, ...plain] : plain;
      sameIds(t, ours.tokenize("Hello world", true), expected, "addSpecial");

      // Decoding gives the text back: exactly for BPE; for SPM behind the space it adds at the
      // start and after each special token (so texts holding a user-defined token are left out).
      for (const text of corpus) {
        if (c.spm && c.userDefined?.some((u) => text.includes(u))) continue;
        const ids = ours.tokenize(text, false, false);
        const back = Buffer.concat(ids.map((id) => ours.tokenBytes(id))).toString("utf8");
        const want = c.spm && text !== "" ? " " + text : text;
        if (back !== want) {
          t.fail(`round trip of ${JSON.stringify(text)} gave ${JSON.stringify(back)}`);
          return;
        }
      }
      t.pass();
    } finally {
      ours.dispose();
      await theirs.dispose();
    }
  });
}
