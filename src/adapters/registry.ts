// Adapter name -> file (llama.cpp LoRA GGUF) or PEFT directory. Sources: the config's
// adapters.entries, every adapter found in adapters.directory, and admin register/remove calls,
// which are kept in a JSON state file so they survive a restart.
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
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
/** What a request names to let the router choose ("adapter": "auto"): never an adapter's name. */
const RESERVED = "auto";
const validName = (name: string) => NAME.test(name) && name !== RESERVED;

export class AdapterRegistryError extends Error {}

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

  async load(): Promise<void> {
    this.entries.clear();
    if (this.opts.directory && existsSync(this.opts.directory)) {
      for (const f of readdirSync(this.opts.directory).sort()) {
        const path = resolve(this.opts.directory, f);
        const name = basename(f, ".gguf");
        if (validName(name) && isAdapter(path)) this.entries.set(name, { name, path, source: "directory" });
      }
    }
    for (const [name, path] of Object.entries(this.opts.entries)) this.entries.set(name, { name, path: resolve(path), source: "config" });
    if (this.opts.stateFile && existsSync(this.opts.stateFile)) {
      this.state = JSON.parse(await readFile(this.opts.stateFile, "utf8")) as State;
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
    if (!validName(name)) throw new AdapterRegistryError(`invalid adapter name ${JSON.stringify(name)} (letters, digits, _ . -; "${RESERVED}" is reserved)`);
    const abs = resolve(path);
    if (!isAdapter(abs)) throw new AdapterRegistryError(`not an adapter file (.gguf) or PEFT directory: ${abs}`);
    const entry: AdapterEntry = { name, path: abs, source: "admin" };
    this.entries.set(name, entry);
    this.state.registered[name] = abs;
    this.state.removed = this.state.removed.filter((n) => n !== name);
    await this.save();
    return entry;
  }

  /** Forgets `name` (the file stays on disk). False when it was not registered. */
  async remove(name: string): Promise<boolean> {
    if (!this.entries.delete(name)) return false;
    delete this.state.registered[name];
    if (!this.state.removed.includes(name)) this.state.removed.push(name);
    await this.save();
    return true;
  }

  private async save(): Promise<void> {
    const file = this.opts.stateFile;
    if (!file) return;
    await mkdir(dirname(file), { recursive: true });
    // Write then rename: a power cut (common on SD-card boards) never leaves half a file.
    await writeFile(`${file}.tmp`, JSON.stringify(this.state, null, 2));
    await rename(`${file}.tmp`, file);
  }
}
