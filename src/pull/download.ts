// One file over HTTP(S) into `dest`, the way a user's download should go on a small board:
// written to `dest.part` (never under the final name until it is complete and verified), resumed
// with an HTTP Range request both after a dropped connection (a few retries within one run) and
// after an interrupted run (the .part file and its .part.json sidecar: the URL and the validator
// it was fetched with), the size checked against the server's, and the SHA-256 checked where one
// is known: given by the caller, or sent by the server (a Hugging Face LFS file's ETag /
// X-Linked-ETag is its SHA-256; RFC 9530 Repr-Digest and RFC 3230 Digest sha-256). A full disk
// ends with a clear error and the .part file kept for a later resume.
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";

export interface DownloadProgress {
  bytesDone: number;
  bytesTotal: number | null;
  resumedFrom: number; // bytes already there when this run started
}

/** The file the bytes go to; a fake in tests (a full disk). */
export interface PartWriter {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface DownloadOptions {
  sha256?: string; // hex; checked in addition to any the server gives
  onProgress?: (p: DownloadProgress) => void;
  retries?: number; // reconnections after a dropped connection (default 5)
  retryDelayMs?: number; // before each (default 500, doubled each time)
  openPart?: (path: string, append: boolean) => Promise<PartWriter>;
  fetchImpl?: typeof fetch;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  sha256: string;
  sha256Source: "option" | "server" | "option+server" | null; // what it was checked against
  requests: number;
  resumedFrom: number;
}

export class DownloadError extends Error {
  constructor(message: string, readonly code: "HTTP" | "NETWORK" | "SIZE" | "CHECKSUM" | "DISK" | "BAD_URL") {
    super(message);
  }
}

interface PartMeta {
  url: string;
  validator: string | null; // ETag or Last-Modified the first bytes came with
  total: number | null;
  serverSha256: string | null;
}

const HEX64 = /^[0-9a-f]{64}$/;

async function defaultOpenPart(path: string, append: boolean): Promise<PartWriter> {
  const fh = await open(path, append ? "a" : "w");
  return {
    write: async (chunk) => {
      let off = 0;
      while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
    },
    close: () => fh.close(),
  };
}

/** The SHA-256 a response names for the whole file, or null. */
function serverSha256(h: Headers): string | null {
  for (const name of ["x-linked-etag", "etag"]) {
    const v = h.get(name)?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
    if (v && HEX64.test(v)) return v;
  }
  for (const name of ["repr-digest", "digest"]) {
    const m = /sha-256=:?([A-Za-z0-9+/=]+):?/i.exec(h.get(name) ?? "");
    if (m) {
      const hex = Buffer.from(m[1], "base64").toString("hex");
      if (HEX64.test(hex)) return hex;
    }
  }
  return null;
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function readMeta(path: string): Promise<PartMeta | null> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as PartMeta;
  } catch {
    return null;
  }
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function describe(e: unknown): string {
  const err = e as { message?: string; cause?: { message?: string; code?: string } };
  return [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(": ");
}

/** GET with redirects followed by hand, so the headers of every hop are seen (HF names the
 *  SHA-256 on the redirect, the CDN does not). */
async function get(fetchImpl: typeof fetch, url: string, headers: Record<string, string>): Promise<{ res: Response; sha: string | null; finalUrl: string }> {
  let sha: string | null = null;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetchImpl(current, { headers, redirect: "manual" });
    sha ??= serverSha256(res.headers);
    const location = res.headers.get("location");
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      current = new URL(location, current).toString();
      continue;
    }
    return { res, sha, finalUrl: current };
  }
  throw new DownloadError(`${url}: too many redirects`, "HTTP");
}

export async function download(url: string, dest: string, o: DownloadOptions = {}): Promise<DownloadResult> {
  try {
    const u = new URL(url);
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new Error("not http(s)");
  } catch {
    throw new DownloadError(`not an http(s) URL: ${url}`, "BAD_URL");
  }
  const fetchImpl = o.fetchImpl ?? fetch;
  const openPart = o.openPart ?? defaultOpenPart;
  const part = `${dest}.part`;
  const metaPath = `${dest}.part.json`;
  const retries = o.retries ?? 5;
  let delay = o.retryDelayMs ?? 500;

  // A .part from an earlier run is resumed only if it came from the same URL.
  let meta = await readMeta(metaPath);
  let have = await sizeOf(part);
  if (!meta || meta.url !== url) {
    meta = null;
    have = 0;
  }
  const resumedFrom = have;
  let requests = 0;
  let attempt = 0;
  for (;;) {
    const headers: Record<string, string> = { "accept-encoding": "identity" };
    if (have > 0) {
      headers.range = `bytes=${have}-`;
      if (meta?.validator) headers["if-range"] = meta.validator;
    }
    let res: Response;
    let sha: string | null;
    try {
      requests++;
      ({ res, sha } = await get(fetchImpl, url, headers));
    } catch (e) {
      if (e instanceof DownloadError) throw e;
      if (attempt++ >= retries) throw new DownloadError(`${url}: ${describe(e)} (gave up after ${retries} retries)`, "NETWORK");
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
      continue;
    }
    if (res.status === 416 && have > 0 && meta?.total === have) {
      await res.body?.cancel(); // the .part is already whole
      break;
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new DownloadError(`${url}: HTTP ${res.status} ${res.statusText}`.trim(), "HTTP");
    }
    let append = false;
    let total: number | null = null;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get("content-range") ?? "");
      if (!m || Number(m[1]) !== have) {
        await res.body?.cancel();
        throw new DownloadError(`${url}: the server answered a resume from byte ${have} with Content-Range '${res.headers.get("content-range")}'`, "HTTP");
      }
      append = true;
      total = m[3] === "*" ? null : Number(m[3]);
    } else {
      have = 0; // the whole file (no Range, or the server ignored it / the file changed)
      const len = res.headers.get("content-length");
      total = len !== null ? Number(len) : null;
    }
    if (!append || !meta) {
      meta = { url, validator: res.headers.get("etag") ?? res.headers.get("last-modified"), total, serverSha256: sha };
      await writeFile(metaPath, JSON.stringify(meta));
    }
    const writer = await openPart(part, append);
    let dropped: unknown = null;
    try {
      const body = res.body;
      if (!body) throw new DownloadError(`${url}: empty response body`, "HTTP");
      const reader = body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          dropped = e;
          break;
        }
        if (chunk.done) break;
        try {
          await writer.write(chunk.value);
        } catch (e) {
          await reader.cancel().catch(() => {});
          const code = (e as NodeJS.ErrnoException).code;
          if (code === "ENOSPC" || code === "EDQUOT")
            throw new DownloadError(`no space left on the device for ${dest} after ${await sizeOf(part)} bytes` +
              `${meta.total ? ` of ${meta.total}` : ""}; free some space and pull again to resume (kept ${part})`, "DISK");
          throw new DownloadError(`writing ${part}: ${(e as Error).message}`, "DISK");
        }
        have += chunk.value.length;
        attempt = 0; // progress made: the retry budget is per stall
        o.onProgress?.({ bytesDone: have, bytesTotal: meta.total, resumedFrom });
      }
    } finally {
      await writer.close();
    }
    if (!dropped && (meta.total === null || have >= meta.total)) break;
    if (attempt++ >= retries)
      throw new DownloadError(`${url}: connection dropped at byte ${have}${meta.total ? ` of ${meta.total}` : ""} (gave up after ${retries} retries; pull again to resume)`, "NETWORK");
    await new Promise((r) => setTimeout(r, delay));
    delay *= 2;
  }

  if (meta!.total !== null && have !== meta!.total) {
    await rm(part, { force: true });
    await rm(metaPath, { force: true });
    throw new DownloadError(`${url}: got ${have} bytes, the server said ${meta!.total}`, "SIZE");
  }
  const digest = await sha256File(part);
  const expected = [o.sha256?.toLowerCase(), meta!.serverSha256].filter((x): x is string => !!x);
  for (const want of expected) {
    if (want !== digest) {
      await rm(part, { force: true });
      await rm(metaPath, { force: true });
      throw new DownloadError(`${url}: SHA-256 mismatch: got ${digest}, expected ${want}; the download was deleted`, "CHECKSUM");
    }
  }
  await rename(part, dest);
  await rm(metaPath, { force: true });
  const sha256Source = o.sha256 && meta!.serverSha256 ? "option+server" : o.sha256 ? "option" : meta!.serverSha256 ? "server" : null;
  return { path: dest, bytes: have, sha256: digest, sha256Source, requests, resumedFrom };
}
