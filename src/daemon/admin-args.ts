// Admin ops' shared pieces: the op signature, coded errors and argument readers.

export type Op = (args: Record<string, unknown>) => Promise<unknown> | unknown;

export class AdminError extends Error {
  constructor(
    readonly code: "BAD_REQUEST" | "ADAPTER_NOT_FOUND",
    message: string,
  ) {
    super(message);
  }
}

export const MAX_TRAIN_PROMPTS = 1000;

/** router/train's prompts: a non-empty array of non-empty strings. */
export function promptsArg(args: Record<string, unknown>): string[] {
  const v = args.prompts;
  if (!Array.isArray(v) || v.length === 0) throw new AdminError("BAD_REQUEST", "prompts: a non-empty array of prompts is required");
  if (v.length > MAX_TRAIN_PROMPTS) throw new AdminError("BAD_REQUEST", `prompts: at most ${MAX_TRAIN_PROMPTS} per call`);
  v.forEach((p, i) => {
    if (typeof p !== "string" || p.trim() === "") throw new AdminError("BAD_REQUEST", `prompts[${i}]: a non-empty string is required`);
  });
  return v as string[];
}

export function stringArg(args: Record<string, unknown>, key: string): string {
  const v = args[key];
  if (typeof v !== "string" || v === "") throw new AdminError("BAD_REQUEST", `${key}: a non-empty string is required`);
  return v;
}

/** An optional integer argument in 0..max (fallback when absent). */
export function intArg(args: Record<string, unknown>, key: string, fallback: number, max: number): number {
  const v = args[key];
  if (v === undefined) return fallback;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) throw new AdminError("BAD_REQUEST", `${key}: an integer from 0 to ${max} is required`);
  return v;
}
