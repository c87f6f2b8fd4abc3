// The one rule that turns a prompt text into the token ids a sequence starts from, for every caller
// (generate, the offline batch, the daemon's requests): BOS first when the model's metadata adds
// one (as llama.cpp tokenizes), and an empty text is BOS alone on every model, the start of
// unconditional generation (a GPT-2 style model's BOS is its <|endoftext|>, which is where such
// models generate from). A model with no BOS token at all cannot start from nothing: refused.
import type { StepEngine } from "./types.js";

export class EmptyPromptError extends Error {
  constructor() {
    super("empty prompt: this model has no BOS token to start from");
    this.name = "EmptyPromptError";
  }
}

/** `parseSpecial`: special-token text (e.g. a rendered chat template's `<|im_start|>`) becomes its token. */
export function promptTokens(engine: Pick<StepEngine, "info" | "tokenize">, text: string, parseSpecial = false): number[] {
  if (text !== "") return engine.tokenize(text, true, parseSpecial);
  if (engine.info.bos < 0) throw new EmptyPromptError();
  return [engine.info.bos];
}
