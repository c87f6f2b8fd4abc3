// The engine's tokenizers against llama.cpp (node-llama-cpp) on the same GGUF files: token
// ids for every string of test/fixtures/tokenizer-corpus.json, with and without parsing
// special tokens, for stories260K (SentencePiece), synthetic byte-level BPE models of the
// Llama 3 and Qwen2 families and the tokenizers of synthetic qwen3, gemma3 and phi3 models; plus
// BOS handling and decode round trips.
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
  noSpacePrefix?: boolean; // SPM without the leading space (gemma)
  extra?: string[]; // strings this case adds to the corpus
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
  // The newer architectures as their GGUFs declare: qwen3 the qwen2 BPE; gemma3 SentencePiece
  // without the leading space (add_space_prefix false); phi3 SentencePiece as llama.
  {
    name: "synthetic qwen3 (BPE qwen2)",
    path: async () => (await writeSyntheticModel({ arch: "qwen3", type: "f32", out: join(dir, "qwen3.gguf") })).path,
    spm: false,
  },
  {
    name: "synthetic gemma3 (SPM, no space prefix)",
    path: async () => (await writeSyntheticModel({ arch: "gemma3", type: "f32", out: join(dir, "gemma3.gguf") })).path,
    spm: true,
    userDefined: spm.tokens.filter((_, i) => spm.types[i] === TokenType.userDefined),
    noSpacePrefix: true,
  },
  {
    name: "synthetic phi3 (SPM, Phi-3's chat tokens drop the whitespace after them)",
    path: async () => (await writeSyntheticModel({ arch: "phi3", type: "f32", out: join(dir, "phi3.gguf") })).path,
    spm: true,
    userDefined: spm.tokens.filter((_, i) => spm.types[i] === TokenType.userDefined),
    extra: ["<|user|>\nHello there<|end|>\n<|assistant|>\n", "</s>  x", "<|end|> \t\n y<s> z", "a <|endoftext|>  b", "<|system|>"],
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
      for (const text of [...corpus, ...(c.extra ?? [])]) {
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
        const want = c.spm && !c.noSpacePrefix && text !== "" ? " " + text : text;
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
