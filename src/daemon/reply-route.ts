// Where a reply goes: the MQTT 5 response topic (with its correlation data), else `reply_to`, else
// <base>/<tenant>/response. A tenant may only name topics inside its own namespace.
import { isTenantReplyTopic } from "../mqtt/acl.js";
import type { BusMessage } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";

export interface ReplyRoute {
  topic: string;
  correlationData?: Buffer;
}

/** The route, or an error text (the reply then goes to the tenant's default response topic). */
export function replyRoute(topics: Topics, tenant: string, msg: BusMessage, replyTo: string | undefined): ReplyRoute | string {
  const requested = msg.responseTopic ?? replyTo;
  if (requested === undefined) return { topic: topics.response(tenant) };
  if (!isTenantReplyTopic(topics.base, tenant, requested))
    return `reply topic ${JSON.stringify(requested)} must be inside ${topics.base}/${tenant}/ (not the request topic, no wildcards)`;
  return msg.responseTopic !== undefined ? { topic: requested, correlationData: msg.correlationData } : { topic: requested };
}
