// Adapter name -> file (llama.cpp LoRA GGUF) or PEFT directory. Sources: the config's
// adapters.entries, every adapter found in adapters.directory, and admin register/remove calls,
// which are kept in a JSON state file so they survive a restart.
//
// What is known of each adapter is kept in an index file in the data dir: path, size and
// modification time, a sha256 of the contents, and the rank, modules and slot bytes the engine
// found. At start every adapter's size and time are checked against the index (a stat each: ten
// thousand adapters cost tens of milliseconds), and before each load from the file the contents
// are hashed once per run and compared. A changed or unreadable adapter stays listed, with its
// problem; requests for it get ADAPTER_INVALID until an admin registers it again.
import { existsSync, readdirSync, readFileSync, statSync, type Stats } from "node:fs";
import { mkdir, readFile, rename, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import type { AdapterSlotInfo } from "../engine/types.js";
import { RequestError } from "../scheduler/types.js";
import { contentHash, sameStamp, stampOf, type FileStamp } from "./content-hash.js";

export type AdapterSource = "config" | "directory" | "admin";

export interface AdapterEntry {
  name: string;
  path: string;
  source: AdapterSource;
  size: number | null; // bytes of the file(s), when readable
  mtime_ms: number | null;
  sha256: string | null; // recorded at registration or at the first load from the file
  rank: number | null; // what the engine found at the first load
  modules: string[] | null;
  bytes: number | null; // bytes the adapter takes in a slot
  problem: string | null; // why it cannot be served (changed, unreadable); null = fine
}

export interface RegistryOptions {
  entries: Record<string, string>;
  directory: string | null;
  stateFile: string | null; // admin changes; null = not persisted
  indexFile?: string | null; // what is known of each adapter; null = not persisted
}

interface State {
  registered: Record<string, string>;
  removed: string[];
}

type IndexRecord = Omit<AdapterEntry, "name" | "source" | "problem">;
interface IndexFile {
  version: 1;
  adapters: Record<string, IndexRecord>;
}

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;
/** What a request names to let the router choose ("adapter": "auto"): never an adapter's name. */
const RESERVED = "auto";
const validName = (name: string) => NAME.test(name) && name !== RESERVED;
const SAVE_DELAY_MS = 500; // index writes are batched: one write for a burst of first loads

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

/** A `.gguf` file or a folder with adapter_config.json is an adapter: its stat, else null. */
function adapterStat(path: string): Stats | null {
  try {
    const st = statSync(path);
    if (st.isDirectory()) return existsSync(join(path, "adapter_config.json")) ? st : null;
    return st.isFile() && extname(path) === ".gguf" ? st : null;
  } catch {
    return null;
  }
}

const isAdapter = (path: string) => adapterStat(path) !== null;

function blank(name: string, path: string, source: AdapterSource): AdapterEntry {
  return { name, path, source, size: null, mtime_ms: null, sha256: null, rank: null, modules: null, bytes: null, problem: null };
}

export class AdapterRegistry {
  private readonly entries = new Map<string, AdapterEntry>();
  private readonly verified = new Set<string>(); // hashed and matching during this run
  private state: State = { registered: {}, removed: [] };
  private saveTimer: NodeJS.Timeout | null = null;
  private saving: Promise<void> = Promise.resolve();

  constructor(private readonly opts: RegistryOptions) {}

  /** A corrupt state file is moved aside (<file>.corrupt-<time>) with an error log, and the daemon
   *  starts with the config's and the directory's adapters: never a crash loop over it. */
  async load(logger?: WarnLogger): Promise<void> {
    this.entries.clear();
    this.verified.clear();
    const scanned = new Map<string, Stats>(); // directory entries' stats, reused for their stamps
    if (this.opts.directory && existsSync(this.opts.directory)) {
      for (const f of readdirSync(this.opts.directory).sort()) {
        const path = resolve(this.opts.directory, f);
        const name = basename(f, ".gguf");
        if (!validName(name)) continue;
        const st = adapterStat(path);
        if (!st) continue;
        this.entries.set(name, blank(name, path, "directory"));
        scanned.set(path, st);
      }
    }
    for (const [name, path] of Object.entries(this.opts.entries)) this.entries.set(name, blank(name, resolve(path), "config"));
    if (this.opts.stateFile && existsSync(this.opts.stateFile)) {
      const file = this.opts.stateFile;
      let parsed: unknown;
      try {
        parsed = JSON.parse(await readFile(file, "utf8"));
      } catch (e) {
        parsed = e;
      }
      if (validState(parsed)) {
        this.state = parsed;
      } else {
        const aside = `${file}.corrupt-${Date.now()}`;
        await rename(file, aside).catch(() => undefined);
        logger?.error({ file, moved_to: aside, err: parsed instanceof Error ? parsed.message : "not {registered, removed}" },
          "adapter state file is corrupt: moved aside; adapters registered by the admin must be registered again");
        this.state = { registered: {}, removed: [] };
      }
      for (const [name, path] of Object.entries(this.state.registered)) this.entries.set(name, blank(name, path, "admin"));
      for (const name of this.state.removed) this.entries.delete(name);
    }
    const index = this.readIndex();
    let changed = false;
    for (const e of this.entries.values()) {
      const known = index[e.name]?.path === e.path ? index[e.name] : undefined;
      if (known) Object.assign(e, known);
      else changed = true;
      const stamp = known && known.size !== null && known.mtime_ms !== null ? { size: known.size, mtime_ms: known.mtime_ms } : undefined;
      changed = this.restamp(e, stamp, scanned.get(e.path)) || changed;
    }
    if (changed) this.scheduleSave();
  }

  resolve(name: string): string | null {
    return this.entries.get(name)?.path ?? null;
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  entry(name: string): AdapterEntry | null {
    return this.entries.get(name) ?? null;
  }

  /** Why `name` cannot be served, or null. */
  problem(name: string): string | null {
    return this.entries.get(name)?.problem ?? null;
  }

  list(): AdapterEntry[] {
    return [...this.entries.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  get size(): number {
    return this.entries.size;
  }

  /**
   * Before a load from the file: the file must be as recorded (size, time) and, once per run, its
   * contents must hash to the recorded sha256 (recorded now when none was). Rejects with
   * ADAPTER_INVALID naming the adapter and what changed.
   */
  async verify(name: string): Promise<void> {
    const e = this.entries.get(name);
    if (!e) throw new RequestError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(name)}`);
    if (!e.problem) this.restamp(e, e.size !== null && e.mtime_ms !== null ? { size: e.size, mtime_ms: e.mtime_ms } : undefined);
    if (e.problem) throw this.invalid(e);
    if (this.verified.has(name)) return;
    let hash: string;
    try {
      hash = await contentHash(e.path);
    } catch (err) {
      e.problem = `unreadable: ${(err as Error).message}`;
      throw this.invalid(e);
    }
    if (e.sha256 !== null && e.sha256 !== hash) {
      e.problem = `its contents changed since it was registered (sha256 ${e.sha256.slice(0, 12)}… is now ${hash.slice(0, 12)}…); register it again to accept the new file`;
      throw this.invalid(e);
    }
    if (e.sha256 === null) {
      e.sha256 = hash;
      this.scheduleSave();
    }
    this.verified.add(name);
  }

  /** Records what the engine found at a load (rank, modules, slot bytes). */
  describe(name: string, info: AdapterSlotInfo): void {
    const e = this.entries.get(name);
    if (!e || (e.rank === info.rank && e.bytes === info.bytes && e.modules?.join(",") === info.modules.join(","))) return;
    Object.assign(e, { rank: info.rank, modules: [...info.modules], bytes: info.bytes });
    this.scheduleSave();
  }

  /** Registers (or re-registers, accepting a changed file) `name`; hashes the contents now. */
  async register(name: string, path: string): Promise<AdapterEntry> {
    if (!validName(name)) throw new AdapterRegistryError(`invalid adapter name ${JSON.stringify(name)} (letters, digits, _ . -; "${RESERVED}" is reserved)`);
    const abs = resolve(path);
    if (!isAdapter(abs)) throw new AdapterRegistryError(`not an adapter file (.gguf) or PEFT directory: ${abs}`);
    const entry = blank(name, abs, "admin");
    this.restamp(entry, undefined);
    if (entry.problem) throw new AdapterRegistryError(`${abs}: ${entry.problem}`);
    entry.sha256 = await contentHash(abs);
    await this.save({ registered: { ...this.state.registered, [name]: abs }, removed: this.state.removed.filter((n) => n !== name) });
    this.entries.set(name, entry);
    this.verified.add(name);
    return entry;
  }

  /** Forgets `name` (the file stays on disk). False when it was not registered. */
  async remove(name: string): Promise<boolean> {
    if (!this.entries.has(name)) return false;
    const registered = { ...this.state.registered };
    delete registered[name];
    await this.save({ registered, removed: [...this.state.removed.filter((n) => n !== name), name] });
    this.entries.delete(name);
    this.verified.delete(name);
    return true;
  }

  /** Writes what is pending (at shutdown). */
  async flush(): Promise<void> {
    if (this.saveTimer) {
      clearTimeout(this.saveTimer);
      this.saveTimer = null;
      this.saving = this.saving.then(() => this.writeIndex()).catch(() => undefined);
    }
    await this.saving;
  }

  // ---- persistence ----

  /** Sets the entry's stamp from the file; a stamp different from `known` is a problem. True if it changed. */
  private restamp(e: AdapterEntry, known: FileStamp | undefined, st?: Stats): boolean {
    let now: FileStamp;
    try {
      now = stampOf(e.path, st);
    } catch (err) {
      e.problem = `unreadable: ${(err as Error).message}`;
      return false;
    }
    if (known && !sameStamp(known, now)) {
      e.problem = `the file changed since it was registered (${known.size} bytes, modified ${new Date(known.mtime_ms).toISOString()}; now ${now.size} bytes, modified ${new Date(now.mtime_ms).toISOString()}); register it again to accept the new file`;
      return false;
    }
    const changed = e.size !== now.size || e.mtime_ms !== now.mtime_ms;
    Object.assign(e, now);
    return changed;
  }

  private invalid(e: AdapterEntry): RequestError {
    return new RequestError("ADAPTER_INVALID", `adapter ${JSON.stringify(e.name)} (${e.path}): ${e.problem}`);
  }

  private readIndex(): Record<string, IndexRecord> {
    const file = this.opts.indexFile;
    if (!file || !existsSync(file)) return {};
    try {
      const parsed = JSON.parse(readFileSync(file, "utf8")) as IndexFile;
      return parsed.version === 1 && parsed.adapters ? parsed.adapters : {};
    } catch {
      return {}; // a damaged index is rebuilt: the adapters are stamped again, hashed at first load
    }
  }

  private scheduleSave(): void {
    if (!this.opts.indexFile || this.saveTimer) return;
    this.saveTimer = setTimeout(() => {
      this.saveTimer = null;
      // A failed write is retried by the next change or at shutdown; the index is a cache of facts.
      this.saving = this.saving.then(() => this.writeIndex()).catch(() => undefined);
    }, SAVE_DELAY_MS);
    this.saveTimer.unref();
  }

  private async writeIndex(): Promise<void> {
    const file = this.opts.indexFile;
    if (!file) return;
    const adapters: Record<string, IndexRecord> = {};
    // An entry with a problem still holds the stamp and hash of the file as registered (restamp
    // and verify leave them), so the problem is found again after a restart.
    for (const e of this.entries.values()) {
      adapters[e.name] = { path: e.path, size: e.size, mtime_ms: e.mtime_ms, sha256: e.sha256, rank: e.rank, modules: e.modules, bytes: e.bytes };
    }
    await atomicWrite(file, JSON.stringify({ version: 1, adapters } satisfies IndexFile));
  }

  /** Writes `next` to the state file now (admin changes must survive a power cut) and adopts it; on
   *  failure (disk full, read-only) nothing changes, memory and file agree. The index follows with the
   *  next batch. */
  private async save(next: State): Promise<void> {
    const file = this.opts.stateFile;
    if (file) {
      try {
        await atomicWrite(file, JSON.stringify(next, null, 2));
      } catch (e) {
        await unlink(`${file}.tmp`).catch(() => undefined);
        throw new AdapterStateError(`could not save ${file}: ${(e as Error).message}`);
      }
    }
    this.state = next;
    this.scheduleSave();
  }
}

/** Write then rename: a power cut (common on SD-card boards) never leaves half a file. */
async function atomicWrite(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(`${file}.tmp`, text);
  await rename(`${file}.tmp`, file);
}
