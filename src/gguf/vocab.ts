// Tokenizer vocabularies for synthetic test models, learned deterministically from a small
// built-in corpus so that they split real text into realistic pieces:
//   spmVocab()     SentencePiece style (tokenizer.ggml.model = "llama"): byte tokens <0xXX>
//                  plus pieces with scores;
//   bpeVocab(pre)  byte-level BPE (tokenizer.ggml.model = "gpt2"): the 256 byte symbols, a few
//                  hundred learned merges and the special tokens of the Llama 3 or Qwen2 family.

/** ggml token types (tokenizer.ggml.token_type). */
export const TokenType = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

export interface Vocab {
  model: "llama" | "gpt2";
  pre?: string;
  tokens: string[];
  scores?: number[];
  types: number[];
  merges?: string[];
  bos: number;
  eos: number;
  unk?: number;
  addBos: boolean;
  addEos: boolean;
  addSpacePrefix?: boolean;
}

const CORPUS = `Once upon a time, there was a little girl named Lily. She loved to play outside in the park.
One day, she saw a big red ball near the tree. "Can I play with it?" she asked her mom.
Her mom smiled and said, "Yes, but don't go too far!" Lily was very happy and ran to the ball.
The sun was shining and the birds were singing. It's a beautiful day, isn't it? They'll play again tomorrow.
I'm sure we've seen this before; you'd think they'd learn. We're going home now.
The quick brown fox jumps over the lazy dog. THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG.
In 1969, 3 astronauts flew 384,400 km to the Moon. The mission cost $25.4 billion (about 2.7% of GDP).
Call +1 555-0100 before 10:30 on 2024-06-01, or e-mail info@example.com.
Le café est très bon. À bientôt, garçon! Où est la bibliothèque? Ça va très bien, merci.
Über den Wolken muss die Freiheit wohl grenzenlos sein. Die Straße ist schön. Grüße aus München!
El niño comió una manzana. ¿Dónde está el baño? ¡Qué día tan bonito! Mañana será mejor.
Привет, как дела? Я люблю читать книги. Москва — столица России.
Γειά σου κόσμε. Η Ελλάδα είναι όμορφη χώρα.
你好，世界！我喜欢学习中文。今天天气很好，我们去公园吧。北京是中国的首都。
こんにちは、世界。日本語を勉強しています。東京はとても大きい都市です。
안녕하세요. 한국어를 공부합니다. 서울은 아름다운 도시입니다.
Emoji time 🙂 🎉 👍 ❤️ 🚀 — great job! 😀😃 The weather is ☀️ today.
def greet(name):
    """Return a greeting."""
    return f"Hello, {name}!"

for i in range(10):
    print(i * i, end=" ")

const sum = (a, b) => a + b;
if (x !== null && y >= 0) { console.log(\`total: \${sum(x, y)}\`); }
#include <stdio.h>
int main(void) { printf("%d\\n", 42); return 0; }
SELECT name, age FROM users WHERE age > 21 ORDER BY name;
<div class="note">Tabs\tand\tnewlines</div>
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000 12345 3.14159 2.71828 -7 +8 1e-9 0x1F.
Once upon a time, there was a boy named Tim. Tim had a dog named Max. Max liked to run and jump.
They played together every day. One day, Tim and Max found a shiny stone in the garden.
"Look, Max! It's so pretty," said Tim. Max wagged his tail. They were the best friends forever.
The end.
`;

/** Characters of the corpus, in order of first appearance. */
function characters(text: string): string[] {
  return [...new Set(Array.from(text))];
}

interface Learned {
  merges: Array<[string, string]>;
}

// Plain BPE training over word counts: repeatedly merge the most frequent adjacent pair
// (ties: the pair that sorts first), up to `count` merges.
function learnMerges(words: Map<string, number>, count: number, split: (w: string) => string[]): Learned {
  const seqs = [...words.entries()].map(([w, n]) => ({ syms: split(w), n }));
  const merges: Array<[string, string]> = [];
  for (let m = 0; m < count; m++) {
    const freq = new Map<string, number>();
    for (const { syms, n } of seqs) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const key = syms[i] + "\u0000" + syms[i + 1];
        freq.set(key, (freq.get(key) ?? 0) + n);
      }
    }
    let best: string | undefined;
    let bestN = 0;
    for (const [key, n] of freq) {
      if (n > bestN || (n === bestN && best !== undefined && key < best)) {
        best = key;
        bestN = n;
      }
    }
    if (best === undefined) break;
    const [a, b] = best.split("\u0000");
    merges.push([a, b]);
    for (const s of seqs) {
      const out: string[] = [];
      for (let i = 0; i < s.syms.length; i++) {
        if (i + 1 < s.syms.length && s.syms[i] === a && s.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else {
          out.push(s.syms[i]);
        }
      }
      s.syms = out;
    }
  }
  return { merges };
}

function countWords(pieces: Iterable<string>): Map<string, number> {
  const words = new Map<string, number>();
  for (const p of pieces) words.set(p, (words.get(p) ?? 0) + 1);
  return words;
}

const SPACE_MARK = "\u2581";

/** SentencePiece-style vocabulary: <unk>, <s>, </s>, 256 byte tokens, characters, merged pieces. */
export function spmVocab(): Vocab {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.unknown, TokenType.control, TokenType.control];
  const scores = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.byte);
    scores.push(0);
  }
  // Words as SentencePiece sees them: each space becomes U+2581 and starts a word.
  const marked = CORPUS.split("\n").map((line) => SPACE_MARK + line.replaceAll(" ", SPACE_MARK));
  const words = countWords(marked.flatMap((l) => l.match(new RegExp(`${SPACE_MARK}?[^${SPACE_MARK}]+|${SPACE_MARK}`, "gu")) ?? []));
  const chars = characters(marked.join("")).filter((c) => c !== "\t");
  const { merges } = learnMerges(words, 360, (w) => Array.from(w));
  const seen = new Set(tokens);
  const add = (piece: string, score: number, type: number = TokenType.normal) => {
    if (seen.has(piece)) return;
    seen.add(piece);
    tokens.push(piece);
    types.push(type);
    scores.push(score);
  };
  // Earlier merges score higher, so the SPM merge order follows the training order.
  merges.forEach(([a, b], i) => add(a + b, -i));
  chars.forEach((c, i) => add(c, -1000 - i));
  add("<sep>", 0, TokenType.userDefined);
  return { model: "llama", tokens, scores, types, bos: 1, eos: 2, unk: 0, addBos: true, addEos: false, addSpacePrefix: true };
}

/** GPT-2's byte alphabet: the character that spells each byte in byte-level BPE. */
export function byteToUnicode(): string[] {
  const out: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out.push(String.fromCodePoint(printable ? b : next++));
  }
  return out;
}

// The pre-tokenizer regexes of the two families (JavaScript spellings).
const PRE_REGEX = {
  "llama-bpe": /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu,
  qwen2: /(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu,
} as const;

const SPECIALS = {
  "llama-bpe": {
    control: ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    userDefined: ["<|reserved_user|>"],
    bos: "<|begin_of_text|>",
    eos: "<|end_of_text|>",
    addBos: true,
  },
  qwen2: {
    control: ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
    userDefined: ["<tool_call>", "</tool_call>"],
    bos: "<|endoftext|>",
    eos: "<|im_end|>",
    addBos: false,
  },
} as const;

/** Byte-level BPE vocabulary of the Llama 3 ("llama-bpe") or Qwen2 ("qwen2") family. */
export function bpeVocab(pre: "llama-bpe" | "qwen2"): Vocab {
  const alphabet = byteToUnicode();
  const encoder = new TextEncoder();
  const spell = (s: string) => Array.from(encoder.encode(s), (b) => alphabet[b]).join("");
  const words = countWords(Array.from(CORPUS.matchAll(PRE_REGEX[pre]), (m) => spell(m[0])));
  const { merges } = learnMerges(words, 420, (w) => Array.from(w));

  const tokens = [...alphabet];
  const seen = new Set(tokens);
  for (const [a, b] of merges) {
    if (!seen.has(a + b)) {
      seen.add(a + b);
      tokens.push(a + b);
    }
  }
  const types: number[] = tokens.map(() => TokenType.normal);
  const sp = SPECIALS[pre];
  for (const t of sp.control) {
    tokens.push(t);
    types.push(TokenType.control);
  }
  for (const t of sp.userDefined) {
    tokens.push(t);
    types.push(TokenType.userDefined);
  }
  return {
    model: "gpt2",
    pre,
    tokens,
    types,
    merges: merges.map(([a, b]) => `${a} ${b}`),
    bos: tokens.indexOf(sp.bos),
    eos: tokens.indexOf(sp.eos),
    addBos: sp.addBos,
    addEos: false,
  };
}
