// A loopback HTTP file server for the pull tests: serves byte arrays by path with Range support
// (206 + Content-Range, If-Range against the ETag) and injectable failures: 404 for unknown
// paths, a connection dropped after some bytes (for the first N responses of a path), a redirect
// (as the Hugging Face hub redirects to its CDN). Records every request.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ServedFile {
  bytes: Uint8Array;
  headers?: Record<string, string>; // e.g. an ETag holding the SHA-256, as the hub sends
  dropAfterBytes?: number; // destroy the socket once this many body bytes are sent ...
  dropTimes?: number; // ... on this many responses (default 1)
  redirectTo?: string; // answer 302 to this path (with `headers`) instead
}

export interface SeenRequest {
  path: string;
  range: string | null;
  status: number;
  bytesSent: number;
}

export class FileServer {
  readonly files = new Map<string, ServedFile>();
  readonly requests: SeenRequest[] = [];
  private server!: Server;
  port = 0;

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
      const f = this.files.get(path);
      const seen: SeenRequest = { path, range: req.headers.range ?? null, status: 0, bytesSent: 0 };
      this.requests.push(seen);
      if (!f) {
        seen.status = 404;
        res.writeHead(404, { "content-type": "text/plain" }).end("not found");
        return;
      }
      if (f.redirectTo) {
        seen.status = 302;
        res.writeHead(302, { location: f.redirectTo, ...f.headers }).end();
        return;
      }
      const size = f.bytes.length;
      const etag = f.headers?.etag;
      let start = 0;
      let end = size - 1;
      const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? "");
      const ifRange = req.headers["if-range"];
      if (m && (!ifRange || ifRange === etag)) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), size - 1);
        if (start >= size) {
          seen.status = 416;
          res.writeHead(416, { "content-range": `bytes */${size}` }).end();
          return;
        }
        seen.status = 206;
        res.writeHead(206, { ...f.headers, "content-length": String(end - start + 1), "content-range": `bytes ${start}-${end}/${size}`, "accept-ranges": "bytes" });
      } else {
        seen.status = 200;
        res.writeHead(200, { ...f.headers, "content-length": String(size), "accept-ranges": "bytes" });
      }
      const body = Buffer.from(f.bytes.subarray(start, end + 1));
      const dropping = f.dropAfterBytes !== undefined && (f.dropTimes ?? 1) > 0;
      if (dropping) {
        f.dropTimes = (f.dropTimes ?? 1) - 1;
        const n = Math.min(f.dropAfterBytes!, body.length);
        res.write(body.subarray(0, n), () => {
          seen.bytesSent = n;
          res.socket?.destroy();
        });
        return;
      }
      seen.bytesSent = body.length;
      res.end(body);
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
