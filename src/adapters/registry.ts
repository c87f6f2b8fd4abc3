// Adapter name -> file (llama.cpp LoRA GGUF) or PEFT directory. Sources: the config's
// adapters.entries, every adapter found in adapters.directory, and admin register/remove calls,
// which are kept in a JSON state file so they survive a restart.
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";

export type AdapterSource = "config" | "directory" | "admin";

export interface AdapterEntry {
  name: string;
  path: string;
  source: AdapterSource;
}

export interface RegistryOptions {
  entries: Record<string, string>;
  directory: string | null;
  stateFile: string | null; // admin changes; null = not persisted
}

interface State {
  registered: Record<string, string>;
  removed: string[];
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export class AdapterRegistryError extends Error {}

/** The state file could not be written (disk full, read-only): the change was not made. */
export class AdapterStateError extends Error {}

interface WarnLogger {
  error(obj: object, msg: string): void;
}

function validState(v: unknown): v is State {
  if (typeof v !== "object" || v === null) return false;
  const { registered, removed } = v as Partial<State>;
  return (
    typeof registered === "object" && registered !== null && !Array.isArray(registered) &&
    Object.entries(registered).every(([k, p]) => NAME.test(k) && typeof p === "string") &&
    Array.isArray(removed) && removed.every((n) => typeof n === "string")
  );
}

/** A `.gguf` file or a folder with adapter_config.json is an adapter. */
function isAdapter(path: string): boolean {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return existsSync(join(path, "adapter_config.json"));
    return st.isFile() && extname(path) === ".gguf";
  } catch {
    return false;
  }
}

export class AdapterRegistry {
  private readonly entries = new Map<string, AdapterEntry>();
  private state: State = { registered: {}, removed: [] };

  constructor(private readonly opts: RegistryOptions) {}

  /** A corrupt state file is moved aside (<file>.corrupt-<time>) with an error log, and the daemon
   *  starts with the config's and the directory's adapters: never a crash loop over it. */
  async load(logger?: WarnLogger): Promise<void> {
    this.entries.clear();
    if (this.opts.directory && existsSync(this.opts.directory)) {
      for (const f of readdirSync(this.opts.directory).sort()) {
        const path = resolve(this.opts.directory, f);
        const name = basename(f, ".gguf");
        if (NAME.test(name) && isAdapter(path)) this.entries.set(name, { name, path, source: "directory" });
      }
    }
    for (const [name, path] of Object.entries(this.opts.entries)) this.entries.set(name, { name, path: resolve(path), source: "config" });
    if (this.opts.stateFile && existsSync(this.opts.stateFile)) {
      const file = this.opts.stateFile;
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(file, "utf8"));
      } catch (e) {
        parsed = e;
      }
      if (!validState(parsed)) {
        const aside = `${file}.corrupt-${Date.now()}`;
        await rename(file, aside).catch(() => undefined);
        logger?.error({ file, moved_to: aside, err: parsed instanceof Error ? parsed.message : "not {registered, removed}" },
          "adapter state file is corrupt: moved aside; adapters registered by the admin must be registered again");
        this.state = { registered: {}, removed: [] };
        return;
      }
      this.state = parsed;
      for (const [name, path] of Object.entries(this.state.registered)) this.entries.set(name, { name, path, source: "admin" });
      for (const name of this.state.removed) this.entries.delete(name);
    }
  }

  resolve(name: string): string | null {
    return this.entries.get(name)?.path ?? null;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  list(): AdapterEntry[] {
    return [...this.entries.values()].sort((a, b) => a.name.localeCompare(b.name));
  }

  get size(): number {
    return this.entries.size;
  }

  async register(name: string, path: string): Promise<AdapterEntry> {
    if (!NAME.test(name)) throw new AdapterRegistryError(`invalid adapter name ${JSON.stringify(name)} (letters, digits, _ . -)`);
    const abs = resolve(path);
    if (!isAdapter(abs)) throw new AdapterRegistryError(`not an adapter file (.gguf) or PEFT directory: ${abs}`);
    const entry: AdapterEntry = { name, path: abs, source: "admin" };
    const next: State = { registered: { ...this.state.registered, [name]: abs }, removed: this.state.removed.filter((n) => n !== name) };
    await this.save(next);
    this.entries.set(name, entry);
    return entry;
  }

  /** Forgets `name` (the file stays on disk). False when it was not registered. */
  async remove(name: string): Promise<boolean> {
    if (!this.entries.has(name)) return false;
    const registered = { ...this.state.registered };
    delete registered[name];
    await this.save({ registered, removed: [...this.state.removed.filter((n) => n !== name), name] });
    this.entries.delete(name);
    return true;
  }

  /** Writes `next` and adopts it; on failure nothing changes (memory and file agree). */
  private async save(next: State): Promise<void> {
    const file = this.opts.stateFile;
    if (file) {
      try {
        await mkdir(dirname(file), { recursive: true });
        // Write then rename: a power cut (common on SD-card boards) never leaves half a file.
        await writeFile(`${file}.tmp`, JSON.stringify(next, null, 2));
        await rename(`${file}.tmp`, file);
      } catch (e) {
        await unlink(`${file}.tmp`).catch(() => undefined);
        throw new AdapterStateError(`could not save ${file}: ${(e as Error).message}`);
      }
    }
    this.state = next;
  }
}
