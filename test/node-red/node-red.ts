// A real Node-RED (installed into build/node-red by scripts/install-node-red.sh) driven through
// its admin HTTP API: start it on a free port with a fresh user directory, deploy a flow, press an
// inject node, read its log.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { packageRoot } from "../../src/engine/native.js";
import { freePort } from "../helpers/ports.js";

export const NODE_RED_JS = join(packageRoot(), "build", "node-red", "node_modules", "node-red", "red.js");
export const nodeRedInstalled = existsSync(NODE_RED_JS);
export const NODE_RED_MISSING = "Node-RED is not installed in build/node-red (bash scripts/install-node-red.sh; npm test runs it): skipped";

export class NodeRed {
  private log = "";
  private readonly waiters: { re: RegExp; resolve: () => void }[] = [];

  private constructor(
    private readonly proc: ChildProcess,
    private readonly userDir: string,
    readonly url: string,
  ) {
    const onData = (d: Buffer) => {
      this.log += d.toString();
      for (const w of this.waiters.filter((x) => x.re.test(this.log))) w.resolve();
    };
    proc.stdout!.on("data", onData);
    proc.stderr!.on("data", onData);
  }

  static async start(): Promise<NodeRed> {
    const userDir = mkdtempSync(join(tmpdir(), "edgelora-node-red-"));
    const port = await freePort();
    // Credentials kept in plain text: with the default system-generated key, a fresh user
    // directory sometimes started the deployed flow before its broker credentials were readable,
    // and the broker node connected without a username.
    const settings = join(userDir, "settings.cjs");
    writeFileSync(settings, `module.exports = ${JSON.stringify({ uiHost: "127.0.0.1", credentialSecret: false, flowFile: "flows.json" })};\n`);
    const proc = spawn(process.execPath, [NODE_RED_JS, "--userDir", userDir, "--port", String(port), "--settings", settings], { stdio: ["ignore", "pipe", "pipe"] });
    const red = new NodeRed(proc, userDir, `http://127.0.0.1:${port}`);
    await red.waitFor(/Started flows|Server now running/, 60_000);
    return red;
  }

  /** Resolves once the log (from the start) matches `re`. */
  waitFor(re: RegExp, timeoutMs = 30_000): Promise<void> {
    if (re.test(this.log)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`Node-RED: no ${re} in its log within ${timeoutMs} ms:\n${this.log}`)), timeoutMs);
      this.waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
    });
  }

  /** A full deployment of `flow` (what the editor's Deploy button does). */
  async deploy(flow: unknown[]): Promise<void> {
    const r = await fetch(`${this.url}/flows`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Node-RED-Deployment-Type": "full" },
      body: JSON.stringify(flow),
    });
    if (!r.ok) throw new Error(`Node-RED deploy: HTTP ${r.status} ${await r.text()}`);
  }

  /** Presses the button of inject node `id`. */
  async inject(id: string): Promise<void> {
    const r = await fetch(`${this.url}/inject/${id}`, { method: "POST" });
    if (!r.ok) throw new Error(`Node-RED inject ${id}: HTTP ${r.status} ${await r.text()}`);
  }

  get output(): string {
    return this.log;
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.proc.once("exit", resolve));
    this.proc.kill("SIGTERM");
    await exited;
    rmSync(this.userDir, { recursive: true, force: true });
  }
}
