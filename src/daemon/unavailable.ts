// When the model failed to load the daemon stays up (LED and bridge state say why) and answers
// every request with INTERNAL instead of leaving it unanswered; a board of a fleet leaves them to
// the other boards.
import type { DaemonContext, Extension } from "./context.js";
import { errorReply, json } from "./payloads.js";
import { BadRequest, parseRequest } from "./request-schema.js";

export class Unavailable implements Extension {
  readonly name = "unavailable";

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const { bus, topics, config } = this.ctx;
    // In a fleet the other boards serve: taking a share of the requests only to refuse them would not help.
    if (bus.mqtt5 && config.mqtt.shared_subscription) {
      this.ctx.logger.warn("model not loaded: this board takes no share of the fleet's requests");
      return;
    }
    await bus.subscribe(topics.allRequests, (msg) => {
      const tenant = topics.tenantOfRequest(msg.topic);
      if (tenant === null) return;
      let transaction: string;
      try {
        transaction = parseRequest(msg.payload, this.ctx.config.mqtt.max_payload_bytes).transaction;
      } catch (e) {
        transaction = (e as BadRequest).transaction;
      }
      const reply = errorReply(transaction, "INTERNAL", `model not loaded: ${this.ctx.modelError}`);
      this.ctx.events.emit("answered", { tenant, code: "INTERNAL" });
      void bus.publish(topics.response(tenant), json("response", reply)).catch(() => undefined);
    });
  }

  async stop(): Promise<void> {}
}
