// An append-only file of JSON records, one per line, that a crash does not corrupt: each append is
// one synchronous write (a killed process loses nothing already written), flushed to the device
// within FLUSH_MS (a power cut may lose that much); rewrite() replaces the whole content through a
// temporary file renamed over it (a crash leaves the old or the new one), to drop what is no longer
// needed. A write that fails (a full or read-only disk) turns the file off: `onFail` is told once and
// later appends do nothing, so its owner goes on without it. Used by the request journal and the
// MQTT outgoing store.
import { closeSync, existsSync, fdatasync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";

const FLUSH_MS = 50;
/** Appended lines after which an owner should rewrite the file with only what it still needs. */
export const COMPACT_AFTER_LINES = 4096;

export class JsonLinesFile<T> {
  private fd: number | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private off = false;
  private count = 0;

  constructor(
    readonly path: string,
    private readonly onFail: (err: unknown) => void,
  ) {}

  /** The records a previous run left (unparsable lines, e.g. one cut short by a crash, counted in `bad`). */
  readExisting(): { records: unknown[]; bad: number } {
    if (!existsSync(this.path)) return { records: [], bad: 0 };
    const records: unknown[] = [];
    let bad = 0;
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      if (line.trim() === "") continue;
      try {
        records.push(JSON.parse(line));
      } catch {
        bad++;
      }
    }
    return { records, bad };
  }

  /** Lines in the file since it was last rewritten. */
  get lines(): number {
    return this.count;
  }

  get failed(): boolean {
    return this.off;
  }

  /** Replaces the content with `records` and opens the file for appending (creating its folder). */
  rewrite(records: T[]): void {
    if (this.off) return;
    try {
      mkdirSync(dirname(this.path), { recursive: true });
      writeFileSync(`${this.path}.tmp`, records.map((r) => `${JSON.stringify(r)}\n`).join(""));
      renameSync(`${this.path}.tmp`, this.path);
      if (this.fd !== null) closeSync(this.fd);
      this.fd = openSync(this.path, "a");
      this.count = records.length;
    } catch (err) {
      this.fail(err);
    }
  }

  /** Appends the records in one write. */
  append(...records: T[]): void {
    if (this.off || this.fd === null) return;
    try {
      writeSync(this.fd, records.map((r) => `${JSON.stringify(r)}\n`).join(""));
      this.count += records.length;
    } catch (err) {
      this.fail(err);
      return;
    }
    this.flushTimer ??= setTimeout(() => {
      this.flushTimer = null;
      if (this.fd !== null) fdatasync(this.fd, (err) => err && this.fail(err));
    }, FLUSH_MS);
  }

  close(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.fd !== null) {
      try {
        closeSync(this.fd); // the kernel still writes what it holds; a power cut may lose FLUSH_MS of it
      } catch {
        // closing anyway
      }
    }
    this.fd = null;
  }

  private fail(err: unknown): void {
    if (this.off) return;
    this.off = true;
    this.close();
    this.onFail(err);
  }
}
