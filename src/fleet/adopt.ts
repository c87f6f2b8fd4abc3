// Session adoption: what the broker had sent a board that died, or queued for it, is taken by a peer.
// Boards in a fleet keep persistent sessions (fleet.session_expiry_s), and acknowledge a request
// only once it is recorded (journal, job ledger). Mosquitto 2 (tested, 2.0.11) then keeps a dead
// board's unacknowledged requests in its session, and even goes on handing the session its share of
// the shared subscription's new requests while the board is away. So when a board goes offline, one
// peer connects with the dead board's client id and clean start off, which resumes that session:
// - the broker redelivers the unacknowledged requests, then the queued ones, in order;
// - the peer drops the request subscription from the session (nothing new is queued there), then
//   publishes a marker to itself through the session: when the marker comes back, everything queued
//   before it has been delivered;
// - each request is handed to this board's handler before its acknowledgement leaves (so it is
//   recorded first), except the copies of requests the dead board had recorded (failover runs those
//   from its job ledger) or that the fleet has answered;
// - the connection asked for a session expiry of 0: the session ends when the peer disconnects.
// Should the dead board come back meanwhile, it takes its session back (the broker disconnects the
// peer) and the broker redelivers to it what the peer had not acknowledged.
import { randomUUID } from "node:crypto";
import { connect } from "mqtt";
import type { DaemonContext } from "../daemon/context.js";
import { parseRequest } from "../daemon/request-schema.js";
import { tlsOptions, type BusMessage } from "../mqtt/client.js";

/** Gives up on the marker after this long (the session is then ended anyway). */
const MARKER_TIMEOUT_MS = 30_000;

export interface Adoption {
  board: string; // the dead board
  clientId: string; // its MQTT client id (from its adapter advert)
  /** Requests the dead board had recorded (its ledger), as `fingerprint`s: failover runs them. */
  recorded: string[];
  /** True when the fleet answered tenant/transaction: a copy is only acknowledged. */
  answered(tenant: string, transaction: string): boolean;
  /** Hands a request to this board's handler (synchronously records it). */
  take(msg: BusMessage): void;
}

/** A request message's identity between boards: its topic and payload. */
export function fingerprint(msg: { topic: string; payload: Buffer }): string {
  return `${msg.topic}\n${msg.payload.toString("base64")}`;
}

/** Resumes the dead board's session, takes its requests, ends it. Resolves with the counts. */
export function adoptSession(ctx: DaemonContext, a: Adoption): Promise<{ taken: number; skipped: number; present: boolean }> {
  const { logger, topics } = ctx;
  const o = ctx.bus.opts;
  const client = connect(o.url, {
    ...tlsOptions(o.tls),
    protocolVersion: 5,
    clientId: a.clientId,
    username: o.username ?? undefined,
    password: o.password ?? undefined,
    keepalive: o.keepaliveS,
    clean: false,
    properties: { sessionExpiryInterval: 0 }, // the session ends with this connection
    reconnectPeriod: 0, // kicked off (the board is back): done
    resubscribe: false,
  });
  const recorded = new Map<string, number>();
  for (const f of a.recorded) recorded.set(f, (recorded.get(f) ?? 0) + 1);
  const marker = `${topics.base}/fleet/${ctx.boardId}/adopting/${randomUUID()}`;
  let taken = 0;
  let skipped = 0;
  let present = false;

  // Runs before mqtt.js acknowledges the message.
  client.on("message", (topic, payload, packet) => {
    if (topic === marker || topics.tenantOfRequest(topic) === null) return; // the board's other topics: dropped
    const msg: BusMessage = { topic, payload, qos: packet.qos, dup: packet.dup, responseTopic: packet.properties?.responseTopic, correlationData: packet.properties?.correlationData };
    const f = fingerprint(msg);
    const n = recorded.get(f) ?? 0;
    if (n > 0) {
      recorded.set(f, n - 1);
      skipped++;
      return;
    }
    if (answeredCopy(ctx, a, msg)) {
      skipped++;
      return;
    }
    taken++;
    a.take(msg);
  });

  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | null = null;
    let settled = false;
    // Resolves at once: what was taken is recorded; the DISCONNECT (or the closed socket) ends the session.
    const finish = (graceful: boolean) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      client.end(!graceful || !client.connected);
      resolve({ taken, skipped, present });
    };
    client.on("message", (topic) => topic === marker && finish(true));
    client.on("error", (err) => logger.warn({ err: err.message, board: a.board }, "session adoption: connection error"));
    client.on("close", () => finish(false)); // refused, or kicked off by the board come back
    client.once("connect", (ack) => {
      present = ack.sessionPresent;
      if (!present) return finish(true);
      timer = setTimeout(() => {
        logger.warn({ board: a.board }, "session adoption: the marker did not come back: the session is ended anyway");
        finish(false);
      }, MARKER_TIMEOUT_MS);
      const share = `$share/edgelora/${topics.allRequests}`;
      void (async () => {
        await client.unsubscribeAsync(share);
        await client.subscribeAsync(marker, { qos: 1 });
        await client.publishAsync(marker, "", { qos: 1 });
      })().catch((err: unknown) => logger.warn({ err, board: a.board }, "session adoption: marker not sent"));
    });
  });
}

/** A copy of a transaction the fleet answered: the tenant has its reply. */
function answeredCopy(ctx: DaemonContext, a: Adoption, msg: BusMessage): boolean {
  const tenant = ctx.topics.tenantOfRequest(msg.topic)!;
  try {
    const parsed = parseRequest(msg.payload, ctx.config.mqtt.max_payload_bytes);
    return parsed.kind === "generate" && parsed.clientTransaction && a.answered(tenant, parsed.transaction);
  } catch {
    return false; // the handler answers BAD_REQUEST
  }
}
