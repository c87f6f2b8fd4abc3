// Admin ops: <base>/bridge/request/<op> -> <base>/bridge/response/<op>, JSON in and out.
//   adapters/list {offset?, limit?} · adapters/register {name, path} · adapters/remove {name} · tenants/list · health
//   router/train {adapter, prompts} · router/profile {adapters?, prompts?} · router/status
// Replies: {transaction?, status:"ok", data} or {transaction?, status:"error", error:{code, message}}.
import { AdapterRegistryError, AdapterStateError } from "../adapters/registry.js";
import type { BusMessage } from "../mqtt/client.js";
import { AdminError, intArg, stringArg, type Op } from "./admin-args.js";
import type { DaemonContext, Extension } from "./context.js";
import { json, type AdminReply } from "./payloads.js";
import { routerOps } from "./router-ops.js";

const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000; // a page stays well under a broker's message size limit

export class Admin implements Extension {
  readonly name = "admin";
  private readonly ops: Record<string, Op>;

  constructor(private readonly ctx: DaemonContext) {
    const { registry } = ctx;
    this.ops = {
      "adapters/list": (args) => {
        const offset = intArg(args, "offset", 0, Number.MAX_SAFE_INTEGER);
        const limit = intArg(args, "limit", LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX);
        const resident = new Map((ctx.slots?.resident() ?? []).map((r) => [r.name, r]));
        const all = registry.list();
        const adapters = all.slice(offset, offset + limit).map((e) => ({
          ...e,
          tier: ctx.slots?.tier(e.name) ?? "cold",
          resident: resident.has(e.name),
          slot: resident.get(e.name)?.slot ?? null,
        }));
        return { total: all.length, offset, limit, adapters };
      },
      "adapters/register": async (args) => {
        try {
          const name = stringArg(args, "name");
          const entry = await registry.register(name, stringArg(args, "path"));
          // A re-registered name may be a new file: running requests finish on the old copy.
          ctx.slots?.forget(name);
          ctx.events.emit("adaptersChanged", {});
          await ctx.router?.refreshExamples(); // an examples.jsonl beside the new adapter
          return entry;
        } catch (e) {
          if (e instanceof AdapterRegistryError) throw new AdminError("BAD_REQUEST", e.message);
          throw e;
        }
      },
      "adapters/remove": async (args) => {
        const name = stringArg(args, "name");
        if (!(await registry.remove(name))) throw new AdminError("ADAPTER_NOT_FOUND", `unknown adapter ${JSON.stringify(name)}`);
        ctx.slots?.forget(name);
        ctx.events.emit("adaptersChanged", {});
        return { name, removed: true };
      },
      "tenants/list": () =>
        Object.entries(ctx.config.tenants).map(([name, t]) => ({ name, adapters: t.adapters, default_adapter: t.default_adapter })),
      ...routerOps(ctx),
      health: () => ({ healthy: ctx.health.healthy, ...ctx.health.get(), model_error: ctx.modelError, scheduler: ctx.scheduler?.stats() ?? null }),
    };
  }

  async start(): Promise<void> {
    await this.ctx.bus.subscribe(this.ctx.topics.allAdminRequests, (msg) => void this.handle(msg));
  }

  async stop(): Promise<void> {}

  private async handle(msg: BusMessage): Promise<void> {
    const op = this.ctx.topics.adminOp(msg.topic);
    if (op === null) return;
    let args: Record<string, unknown> = {};
    let reply: AdminReply;
    try {
      const text = msg.payload.toString("utf8").trim();
      if (text !== "") {
        const parsed: unknown = JSON.parse(text);
        if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new AdminError("BAD_REQUEST", "payload must be a JSON object");
        args = parsed as Record<string, unknown>;
      }
      const fn = Object.hasOwn(this.ops, op) ? this.ops[op] : undefined;
      if (!fn) throw new AdminError("BAD_REQUEST", `unknown op ${JSON.stringify(op)}; ops: ${Object.keys(this.ops).join(", ")}`);
      reply = { status: "ok", data: await fn(args) };
    } catch (e) {
      const code = e instanceof AdminError ? e.code : e instanceof SyntaxError ? "BAD_REQUEST" : "INTERNAL";
      if (code === "INTERNAL") this.ctx.logger.error({ err: e, op }, "admin op failed");
      // A storage failure is the admin's to fix (disk full, read-only): say so; other faults stay private.
      const shown = code !== "INTERNAL" || e instanceof AdapterStateError;
      reply = { status: "error", error: { code, message: shown ? (e as Error).message : "internal error" } };
    }
    if (args.transaction !== undefined) reply = { transaction: args.transaction, ...reply };
    await this.ctx.bus
      .publish(this.ctx.topics.adminResponse(op.replace(/[+#]/g, "_")), json("bridge/response", reply), { correlationData: msg.correlationData })
      .catch((err: unknown) => this.ctx.logger.warn({ err, op }, "admin reply not published"));
  }
}
