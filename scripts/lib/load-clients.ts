// Tenant clients that put load on a daemon (or a fleet): closed loop (a fixed number of requests
// in flight per tenant, to measure capacity) or open loop (Poisson arrivals at a given rate, a mix
// of adapters, lengths, streaming and cancels). Each final reply becomes an Outcome.
import { connectAsync, type IClientOptions, type MqttClient } from "mqtt";

export interface Outcome {
  latencyMs: number;
  code: string | null; // null: ok
}

const PROMPTS = ["Once upon a time", "The little dog ran to the park", "She opened the box and found", "Tom wanted to play, but"];

export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export class LoadClients {
  private readonly clients = new Map<string, MqttClient>();
  private readonly pending = new Map<string, { t0: number; resolve: (o: Outcome) => void }>();
  private outcomes: Outcome[] = [];
  private seq = 0;
  private arrivals: NodeJS.Timeout | null = null;

  constructor(
    private readonly url: string,
    private readonly tenants: string[],
    private readonly adapters: string[],
    private readonly connectOptions: IClientOptions = {},
  ) {}

  get inFlight(): number {
    return this.pending.size;
  }

  async connect(): Promise<void> {
    for (const tenant of this.tenants) {
      const c = await connectAsync(this.url, { username: tenant, password: tenant, reconnectPeriod: 1000, ...this.connectOptions });
      c.on("message", (_topic, payload) => this.onReply(payload));
      await c.subscribeAsync(`edgelora/${tenant}/response`, { qos: 1 });
      this.clients.set(tenant, c);
    }
  }

  /** Requests answered per second, and their latencies, with `perTenant` requests in flight per
   *  tenant, over `ms`. */
  async closedLoop(ms: number, perTenant = 1, maxTokens = 32): Promise<{ perSecond: number; latencyMs: number[]; errors: number }> {
    const end = performance.now() + ms;
    const latencyMs: number[] = [];
    let errors = 0;
    const lane = async (tenant: string, k: number) => {
      while (performance.now() < end) {
        const o = await this.send(tenant, { prompt: PROMPTS[k % PROMPTS.length], max_tokens: maxTokens, temperature: 0 });
        if (performance.now() > end) break;
        if (o.code === null) latencyMs.push(o.latencyMs);
        else errors++;
      }
    };
    const t0 = performance.now();
    await Promise.all(this.tenants.flatMap((t) => Array.from({ length: perTenant }, (_, k) => lane(t, k))));
    return { perSecond: latencyMs.length / ((end - t0) / 1000), latencyMs, errors };
  }

  /** Poisson arrivals at `rate` requests/s until stopOpenLoop(). */
  startOpenLoop(rate: number): void {
    const next = () => {
      this.arrivals = setTimeout(() => {
        this.fire();
        next();
      }, -Math.log(1 - Math.random()) * (1000 / rate));
    };
    next();
  }

  /** Stops the arrivals and waits (up to timeoutMs) for the requests in flight. */
  async stopOpenLoop(timeoutMs: number): Promise<void> {
    if (this.arrivals) clearTimeout(this.arrivals);
    this.arrivals = null;
    const deadline = Date.now() + timeoutMs;
    while (this.pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  }

  /** The outcomes since the last call. */
  drain(): Outcome[] {
    const out = this.outcomes;
    this.outcomes = [];
    return out;
  }

  async close(): Promise<void> {
    if (this.arrivals) clearTimeout(this.arrivals);
    await Promise.all([...this.clients.values()].map((c) => c.endAsync(true)));
  }

  /** One request of the mix: mostly the tenant's own adapter, some another one or the base model;
   *  16-64 tokens; a third streamed; one in twenty cancelled after 50 ms. */
  private fire(): void {
    const tenant = this.tenants[Math.floor(Math.random() * this.tenants.length)];
    const r = Math.random();
    const adapter = r < 0.7 ? undefined : r < 0.9 ? this.adapters[Math.floor(Math.random() * this.adapters.length)] : null;
    const body = {
      prompt: PROMPTS[Math.floor(Math.random() * PROMPTS.length)],
      max_tokens: [16, 32, 64][Math.floor(Math.random() * 3)],
      stream: Math.random() < 1 / 3,
      ...(adapter !== undefined ? { adapter } : {}),
    };
    const transaction = this.nextTransaction(tenant);
    void this.send(tenant, body, transaction).then((o) => this.outcomes.push(o));
    if (Math.random() < 0.05) {
      setTimeout(() => void this.clients.get(tenant)!.publishAsync(`edgelora/${tenant}/request`, JSON.stringify({ transaction, cancel: true }), { qos: 1 }).catch(() => undefined), 50);
    }
  }

  private nextTransaction(tenant: string): string {
    return `${tenant}-${++this.seq}`;
  }

  private send(tenant: string, body: Record<string, unknown>, transaction = this.nextTransaction(tenant)): Promise<Outcome> {
    return new Promise((resolve) => {
      this.pending.set(transaction, { t0: performance.now(), resolve });
      this.clients
        .get(tenant)!
        .publishAsync(`edgelora/${tenant}/request`, JSON.stringify({ ...body, transaction }), { qos: 1 })
        .catch(() => {
          this.pending.delete(transaction);
          resolve({ latencyMs: NaN, code: "PUBLISH_FAILED" });
        });
    });
  }

  private onReply(payload: Buffer): void {
    let m: { transaction?: string; type?: string; status?: string; error?: { code?: string } };
    try {
      m = JSON.parse(payload.toString()) as typeof m;
    } catch {
      return;
    }
    if (typeof m.transaction !== "string" || m.type === "chunk") return;
    const p = this.pending.get(m.transaction);
    if (!p) return; // e.g. the BAD_REQUEST of a cancel that came after the answer
    this.pending.delete(m.transaction);
    p.resolve({ latencyMs: performance.now() - p.t0, code: m.status === "ok" ? null : (m.error?.code ?? "UNKNOWN") });
  }
}
