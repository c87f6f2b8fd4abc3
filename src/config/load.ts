// Load order: config/default.yaml, then the --config file merged over it, then EDGELORA_* env
// overrides; the result is validated against the schema and every problem reported with its path.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Ajv, type ErrorObject } from "ajv";
import { parseDocument } from "yaml";
import { configSchema, type Config } from "./schema.js";
import { ConfigError, type ConfigIssue } from "./errors.js";
import { envOverrides } from "./env.js";

/** config/default.yaml at the package root (this file is dist/src/config/load.js once built). */
export const DEFAULT_CONFIG_FILE = fileURLToPath(new URL("../../../config/default.yaml", import.meta.url));

export interface LoadOptions {
  file?: string; // the --config file
  env?: NodeJS.ProcessEnv;
  defaultsFile?: string;
}

type Tree = Record<string, unknown>;

function isTree(v: unknown): v is Tree {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; arrays and scalars replace. */
function merge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = isTree(v) && isTree(out[k]) ? merge(out[k] as Tree, v) : v;
  return out;
}

function readYaml(file: string, issues: ConfigIssue[]): Tree {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    issues.push({ path: file, message: `cannot read: ${(e as Error).message}` });
    return {};
  }
  const doc = parseDocument(text, { prettyErrors: true });
  for (const err of doc.errors) {
    const line = err.linePos?.[0];
    issues.push({ path: line ? `${file}:${line.line}:${line.col}` : file, message: err.message.split("\n")[0] });
  }
  if (doc.errors.length > 0) return {};
  const value: unknown = doc.toJS() ?? {};
  if (!isTree(value)) {
    issues.push({ path: file, message: "the top level must be a mapping of sections" });
    return {};
  }
  return value;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]] = value;
}

function issueOf(e: ErrorObject): ConfigIssue {
  const parts = e.instancePath.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
  if (e.keyword === "additionalProperties") parts.push(String(e.params.additionalProperty));
  if (e.keyword === "required") parts.push(String(e.params.missingProperty));
  const message =
    e.keyword === "additionalProperties" ? "unknown setting"
    : e.keyword === "required" ? "missing"
    : e.keyword === "enum" ? `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(", ")}`
    : e.keyword === "propertyNames" ? `invalid name ${JSON.stringify(e.params.propertyName)}`
    : (e.message ?? e.keyword);
  return { path: parts.join("."), message };
}

const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false });
const validate = ajv.compile(configSchema);

/** Throws ConfigError listing every problem found. */
export function loadConfig(opts: LoadOptions = {}): Config {
  const issues: ConfigIssue[] = [];
  let tree = readYaml(opts.defaultsFile ?? DEFAULT_CONFIG_FILE, issues);
  if (opts.file) tree = merge(tree, readYaml(opts.file, issues));
  const env = envOverrides(opts.env ?? process.env, configSchema);
  issues.push(...env.issues);
  for (const o of env.overrides) setPath(tree, o.path, o.value);
  if (issues.length > 0) throw new ConfigError(issues);
  if (!validate(tree)) {
    // Show each problem once: ajv reports `propertyNames` failures twice (the name and the keyword).
    const seen = new Set<string>();
    const found = (validate.errors ?? []).map(issueOf).filter((i) => {
      const key = `${i.path}\0${i.message}`;
      return seen.has(key) ? false : (seen.add(key), true);
    });
    throw new ConfigError(found);
  }
  return tree as unknown as Config;
}
