// A fake systemd NOTIFY_SOCKET for tests: a unix datagram socket (Node has none, so a small
// python3 receiver) that reports each message with the PID the kernel attests for its sender
// (SCM_CREDENTIALS), which is how systemd decides which unit a notification belongs to.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";

const RECEIVER = `
import json, socket, struct, sys
name = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\\0" + name[1:] if name.startswith("@") else name)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
print(json.dumps({"listening": True}), flush=True)
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(12))
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    print(json.dumps({"pid": pid, "message": msg.decode()}), flush=True)
`;

export const python3Available = spawnSync("python3", ["-c", "import socket; socket.SCM_CREDENTIALS"], { stdio: "ignore" }).status === 0;

export interface Notification {
  pid: number | null;
  message: string;
}

export class FakeNotifySocket {
  readonly received: Notification[] = [];
  private readonly waiters: { match: (n: Notification) => boolean; resolve: (n: Notification) => void }[] = [];

  private constructor(private readonly proc: ChildProcess) {}

  /** Listens on `name` (a path, or @name in the abstract namespace). */
  static async listen(name: string): Promise<FakeNotifySocket> {
    const proc = spawn("python3", ["-c", RECEIVER, name], { stdio: ["ignore", "pipe", "inherit"] });
    const sock = new FakeNotifySocket(proc);
    const lines = createInterface({ input: proc.stdout! });
    await new Promise<void>((resolve, reject) => {
      proc.once("exit", (code) => reject(new Error(`notify socket receiver exited with ${code}`)));
      lines.on("line", (line) => {
        const m = JSON.parse(line) as Partial<Notification> & { listening?: boolean };
        if (m.listening) return resolve();
        const n = { pid: m.pid ?? null, message: m.message ?? "" };
        sock.received.push(n);
        for (const w of sock.waiters.filter((x) => x.match(n))) w.resolve(n);
      });
    });
    return sock;
  }

  /** The first message (already received or coming) equal to `message`. */
  next(message: string, timeoutMs = 30_000): Promise<Notification> {
    const have = this.received.find((n) => n.message === message);
    if (have) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${message} on the notify socket within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match: (n) => n.message === message, resolve: (n) => (clearTimeout(t), resolve(n)) });
    });
  }

  close(): void {
    this.proc.kill();
  }
}
