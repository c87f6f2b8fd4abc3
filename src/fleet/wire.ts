// A tenant's request message as it travels between boards (forwarded, or kept in the job ledger):
// JSON with the payload and correlation data in base64.
import type { BusMessage } from "../mqtt/client.js";

export interface WireMessage {
  topic: string;
  payload: string; // base64
  responseTopic?: string;
  correlationData?: string; // base64
}

export function toWire(msg: BusMessage): WireMessage {
  return {
    topic: msg.topic,
    payload: msg.payload.toString("base64"),
    ...(msg.responseTopic !== undefined ? { responseTopic: msg.responseTopic } : {}),
    ...(msg.correlationData !== undefined ? { correlationData: msg.correlationData.toString("base64") } : {}),
  };
}

/** The message, or null when `w` is not a WireMessage. */
export function fromWire(w: unknown): BusMessage | null {
  if (typeof w !== "object" || w === null) return null;
  const { topic, payload, responseTopic, correlationData } = w as Partial<WireMessage>;
  if (typeof topic !== "string" || typeof payload !== "string") return null;
  return {
    topic,
    payload: Buffer.from(payload, "base64"),
    qos: 1,
    dup: false,
    ...(typeof responseTopic === "string" ? { responseTopic } : {}),
    ...(typeof correlationData === "string" ? { correlationData: Buffer.from(correlationData, "base64") } : {}),
  };
}

/** JSON object of a message payload, or null (an empty retained message clears a topic). */
export function jsonOf(payload: Buffer): Record<string, unknown> | null {
  if (payload.length === 0) return null;
  try {
    const v: unknown = JSON.parse(payload.toString("utf8"));
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
