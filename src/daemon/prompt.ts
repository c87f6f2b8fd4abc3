// From a request to prompt tokens: plain prompts are tokenized as they are; chat `messages` are
// rendered with the model's tokenizer.chat_template (Jinja, as Hugging Face does) first. Either
// text becomes tokens by engine/prompt-tokens.ts's one rule.
import { Template } from "@huggingface/jinja";
import { EmptyPromptError, promptTokens as textTokens } from "../engine/prompt-tokens.js";
import type { StepEngine } from "../engine/types.js";
import { RequestError } from "../scheduler/types.js";
import type { RequestBody } from "./request-schema.js";

const templates = new Map<string, Template>();

function compiled(source: string): Template {
  let t = templates.get(source);
  if (!t) {
    t = new Template(source);
    templates.set(source, t);
  }
  return t;
}

function tokenText(engine: StepEngine, token: number): string {
  return Buffer.from(engine.tokenBytes(token)).toString("utf8");
}

export function promptTokens(engine: StepEngine, body: RequestBody, templateOverride: string | null): number[] {
  try {
    return textTokens(engine, promptText(engine, body, templateOverride), body.messages !== undefined);
  } catch (e) {
    if (e instanceof EmptyPromptError) throw new RequestError("BAD_REQUEST", e.message);
    throw e;
  }
}

function promptText(engine: StepEngine, body: RequestBody, templateOverride: string | null): string {
  if (body.messages === undefined) return body.prompt ?? "";
  const source = templateOverride ?? engine.metaString("tokenizer.chat_template");
  if (!source) throw new RequestError("BAD_REQUEST", "this model has no chat template: send `prompt` instead of `messages`");
  let text: string;
  try {
    // bos_token is left empty: the tokenizer adds BOS itself when the model wants one (as llama.cpp does).
    text = compiled(source).render({
      messages: body.messages,
      add_generation_prompt: true,
      bos_token: "",
      eos_token: tokenText(engine, engine.info.eos),
    });
  } catch (e) {
    throw new RequestError("BAD_REQUEST", `chat template failed: ${(e as Error).message}`);
  }
  return text;
}
