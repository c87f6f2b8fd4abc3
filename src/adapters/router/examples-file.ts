// Example prompts shipped beside an adapter: `<dir>/examples.jsonl` for a PEFT folder,
// `<name>.examples.jsonl` next to `<name>.gguf`. One prompt per line, as a JSON string or
// {"prompt": "..."}; blank lines are skipped.
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";

export function examplesFileOf(adapterPath: string): string {
  try {
    if (statSync(adapterPath).isDirectory()) return join(adapterPath, "examples.jsonl");
  } catch {
    // a missing adapter has no examples file either; fall through to the file rule
  }
  return adapterPath.replace(/\.gguf$/i, "") + ".examples.jsonl";
}

/** Path, size and mtime: a changed file is read again. Null when there is no file. */
export function examplesFileIdentity(file: string): string | null {
  if (!existsSync(file)) return null;
  const st = statSync(file);
  return `${file}:${st.size}:${Math.round(st.mtimeMs)}`;
}

/** The prompts of an examples file, and one message per line that is not a prompt. */
export async function readExamplesFile(file: string): Promise<{ prompts: string[]; problems: string[] }> {
  const prompts: string[] = [];
  const problems: string[] = [];
  (await readFile(file, "utf8")).split("\n").forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      const v: unknown = JSON.parse(line);
      const p = typeof v === "string" ? v : typeof v === "object" && v !== null ? (v as { prompt?: unknown }).prompt : undefined;
      if (typeof p === "string" && p.trim() !== "") prompts.push(p);
      else problems.push(`${file}:${i + 1}: not a prompt (a JSON string or {"prompt": "..."})`);
    } catch {
      problems.push(`${file}:${i + 1}: not JSON`);
    }
  });
  return { prompts, problems };
}
