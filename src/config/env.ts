// EDGELORA_<SECTION>_<KEY> overrides, resolved against the schema so keys may contain underscores
// (EDGELORA_MQTT_BASE_TOPIC -> mqtt.base_topic, EDGELORA_MQTT_TLS_CA -> mqtt.tls.ca).
import type { ConfigIssue } from "./errors.js";

const PREFIX = "EDGELORA_";

interface SchemaNode {
  type?: string | readonly string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: unknown;
  enum?: readonly unknown[];
}

export interface EnvOverride {
  path: string[];
  value: unknown;
  variable: string;
}

/** Finds the schema path that `words` (lower-case, split on "_") spell, longest key first. */
function resolve(node: SchemaNode, words: string[]): { path: string[]; leaf: SchemaNode } | null {
  if (words.length === 0) return { path: [], leaf: node };
  const props = node.properties ?? {};
  for (let n = words.length; n >= 1; n--) {
    const key = words.slice(0, n).join("_");
    const child = props[key];
    if (!child) continue;
    const rest = resolve(child, words.slice(n));
    if (rest) return { path: [key, ...rest.path], leaf: rest.leaf };
  }
  // Maps (tenants, adapters.entries): the next word is a map key; a nested key path follows.
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    const child = node.additionalProperties as SchemaNode;
    for (let n = 1; n <= words.length; n++) {
      const rest = resolve(child, words.slice(n));
      if (rest) return { path: [words.slice(0, n).join("_"), ...rest.path], leaf: rest.leaf };
    }
  }
  return null;
}

function types(leaf: SchemaNode): string[] {
  if (leaf.enum) return [...new Set(leaf.enum.map((v) => (v === null ? "null" : typeof v)))];
  return typeof leaf.type === "string" ? [leaf.type] : [...(leaf.type ?? [])];
}

/** Env strings are converted to the schema's type where they parse; otherwise the string stays and
 *  schema validation reports the mismatch with its path. */
function coerce(raw: string, leaf: SchemaNode): unknown {
  const t = types(leaf);
  if (t.includes("null") && (raw === "" || raw === "null")) return null;
  if ((t.includes("integer") || t.includes("number")) && raw.trim() !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  if (t.includes("boolean") && (raw === "true" || raw === "false")) return raw === "true";
  if (t.includes("array") || t.includes("object")) {
    try {
      return JSON.parse(raw);
    } catch {
      return t.includes("array") ? raw.split(",").map((s) => s.trim()).filter((s) => s !== "") : raw;
    }
  }
  return raw;
}

export function envOverrides(env: NodeJS.ProcessEnv, schemaObject: object): { overrides: EnvOverride[]; issues: ConfigIssue[] } {
  const schema = schemaObject as SchemaNode;
  const overrides: EnvOverride[] = [];
  const issues: ConfigIssue[] = [];
  const sections = Object.keys(schema.properties ?? {});
  for (const [variable, raw] of Object.entries(env)) {
    if (!variable.startsWith(PREFIX) || raw === undefined) continue;
    const words = variable.slice(PREFIX.length).toLowerCase().split("_");
    // Variables of other sections (EDGELORA_SOMETHING_ELSE) belong to other tools: ignored.
    if (!sections.some((s) => words.join("_").startsWith(`${s}_`))) continue;
    const found = resolve(schema, words);
    if (!found || found.path.length < 2) {
      issues.push({ path: variable, message: "no such setting" });
      continue;
    }
    overrides.push({ path: found.path, value: coerce(raw, found.leaf), variable });
  }
  return { overrides, issues };
}
