// The daemon's MQTT connection (mqtt.js): to the embedded broker (MQTT 3.1.1) or an external one
// (MQTT 5). Last will = bridge offline; after a reconnect (a broker restart loses retained
// messages) the retained state is published again; mqtt.js resubscribes by itself.
// With a persistent session (clean: false) the broker delivers what it queued for us as soon as we
// connect, before the features have subscribed: such messages are held until a handler is added.
// With an outgoing store file, QoS 2 publishes survive a SIGKILL (see file-store.ts).
import { readFileSync } from "node:fs";
import { connect, UniqueMessageIdProvider, type IClientOptions, type IClientPublishOptions, type ISubscriptionMap, type MqttClient } from "mqtt";
import type { Logger } from "pino";
import { TypedEvents, type Signal } from "../runtime/events.js";
import { FileStore } from "./file-store.js";
import { matches } from "./match.js";

export interface BusMessage {
  topic: string;
  payload: Buffer;
  qos: 0 | 1 | 2;
  dup: boolean;
  responseTopic?: string; // MQTT 5 request/response
  correlationData?: Buffer;
  expirySeconds?: number; // MQTT 5 message expiry: what is left of it when the broker sent the message
}

export interface PublishOptions {
  retain?: boolean;
  qos?: 0 | 1 | 2;
  correlationData?: Buffer; // MQTT 5 only; dropped on 3.1.1
  expirySeconds?: number; // MQTT 5 message expiry (a retained message then disappears); dropped on 3.1.1
  /** Called once the packet is in mqtt.js's outgoing store, before it is written to the socket (not
   *  when it never got there: the connection closed first). With a store file and QoS 2, from then on
   *  the broker gets it exactly once, even if this process is killed. */
  onStored?: () => void;
}

export interface BusOptions {
  url: string;
  protocolVersion: 4 | 5;
  clientId: string;
  username?: string | null;
  password?: string | null;
  qos: 0 | 1 | 2;
  keepaliveS: number;
  reconnectMs: number;
  tls?: { ca: string | null; cert: string | null; key: string | null; rejectUnauthorized: boolean };
  will: { topic: string; payload: string };
  /** false: a persistent session (the broker keeps our subscriptions and queues QoS 1 messages while
   *  we are away). MQTT 5: it expires sessionExpiryS after a disconnect. Default true. */
  clean?: boolean;
  sessionExpiryS?: number;
  /** mqtt.js's outgoing store in this file (QoS 2 packets survive a restart); with clean: false only. */
  outgoingStoreFile?: string;
  logger: Logger;
}

const MAX_HELD = 10_000; // messages kept for handlers not added yet

export type MessageHandler = (msg: BusMessage) => void;

export interface BusEvents {
  up: Signal; // every (re)connect
  down: Signal; // the connection is lost
}

/** mqtt.js's TLS options for `tls` (files read now), for the Bus and the fleet's own connections. */
export function tlsOptions(tls: BusOptions["tls"]): IClientOptions {
  if (!tls) return {};
  return {
    ...(tls.ca ? { ca: readFileSync(tls.ca) } : {}),
    ...(tls.cert ? { cert: readFileSync(tls.cert) } : {}),
    ...(tls.key ? { key: readFileSync(tls.key) } : {}),
    rejectUnauthorized: tls.rejectUnauthorized,
  };
}

export interface HoldObserver {
  held(msg: BusMessage): void;
  released(msg: BusMessage): void;
}

export class Bus {
  readonly events: TypedEvents<BusEvents>;
  private client: MqttClient | null = null;
  private readonly handlers: { filter: string; handler: MessageHandler }[] = [];
  private readonly retained = new Map<string, string>();
  private held: BusMessage[] = [];
  private holdObserver: HoldObserver | null = null;
  private connects = 0;
  private readonly store: FileStore | null;
  // QoS 2 publishes the broker has not completed: no more than its receive maximum at once (Mosquitto
  // answers more with "Quota exceeded" and drops them).
  private qos2InFlight = 0;
  private receiveMaximum = 65535; // the broker's, from CONNACK
  private readonly qos2Waiting: (() => void)[] = [];
  /** At stop, a persistent session is ended (MQTT 5: DISCONNECT with session expiry 0) instead of
   *  kept for sessionExpiryS: the broker then stops queueing messages for it. */
  endSessionAtStop = false;

  constructor(readonly opts: BusOptions) {
    this.events = new TypedEvents<BusEvents>(opts.logger);
    this.store = opts.outgoingStoreFile && opts.clean === false ? new FileStore(opts.outgoingStoreFile, opts.logger) : null;
  }

  /** QoS 2 publishes reach the broker exactly once, across a restart of this process. */
  get exactlyOnce(): boolean {
    return this.store !== null;
  }

  /** The last run handed mqtt.js a QoS 2 publish with this topic and payload (its outgoing store held
   *  it at start): mqtt.js sends it again, or the broker already has it; not to be published again. */
  handedOverBefore(topic: string, payload: string): boolean {
    return this.store?.heldAtOpen(topic, payload) ?? false;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Runs `then` once what has been published so far is in the kernel's socket buffer (sent even if
   *  this process is killed next): at once when it is, else after the socket's pending writes.
   *  mqtt-packet corks the socket per packet and uncorks it a tick later; this uncorks it now. */
  afterWritten(then: () => void): void {
    const stream = this.client?.stream;
    if (!stream || !this.connected) return then();
    while (stream.writableCorked > 0) stream.uncork();
    if (stream.writableLength === 0) return then();
    stream.write(Buffer.alloc(0), () => then()); // called once every earlier write has completed
  }

  get mqtt5(): boolean {
    return this.opts.protocolVersion === 5;
  }

  /** Starts connecting (and retrying); does not wait for the broker. */
  start(): void {
    const o = this.opts;
    const options: IClientOptions = {
      protocolVersion: o.protocolVersion,
      clientId: o.clientId,
      username: o.username ?? undefined,
      password: o.password ?? undefined,
      keepalive: o.keepaliveS,
      reconnectPeriod: o.reconnectMs,
      connectTimeout: 10_000,
      clean: o.clean ?? true,
      resubscribe: true,
      ...(o.protocolVersion === 5 && o.clean === false ? { properties: { sessionExpiryInterval: o.sessionExpiryS ?? 3600 } } : {}),
      will: { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: 1, retain: true },
    };
    if (this.store) {
      // New packets must not take an id the broker may still hold from the last run (it would take
      // the new message for the old one): mqtt.js registers stored ids again on every connect.
      const ids = new UniqueMessageIdProvider();
      for (const id of this.store.ids) ids.register(id);
      options.outgoingStore = this.store;
      options.messageIdProvider = ids;
    }
    Object.assign(options, tlsOptions(o.tls));
    const client = connect(o.url, options);
    this.client = client;
    // Before mqtt.js handles the CONNACK (and sends the store again).
    client.on("packetreceive", (packet) => {
      if (packet.cmd !== "connack" || packet.sessionPresent || !this.store) return;
      const again = this.store.sessionLost();
      if (again > 0) o.logger.warn({ replies: again }, "the broker did not keep the session: QoS 2 replies it may not have delivered are sent again");
    });
    if (process.env.EDGELORA_TEST_STALL_INTAKE === "1") stallIntake(client, o.logger);
    client.on("connect", (connack) => {
      this.receiveMaximum = connack.properties?.receiveMaximum ?? 65535;
      // Replies are small writes: with Nagle's algorithm each waited for the broker's delayed ACK
      // (about 40 ms a message on loopback). TLS streams wrap a socket that has the same call.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.connects++;
      o.logger.info({ url: o.url, reconnect: this.connects > 1 }, "mqtt connected");
      if (this.connects > 1) for (const [topic, payload] of this.retained) this.send(topic, payload, { retain: true });
      this.events.emit("up", {});
    });
    client.on("offline", () => {
      o.logger.warn({ url: o.url }, "mqtt connection lost");
      this.events.emit("down", {});
    });
    client.on("error", (err) => o.logger.warn({ err: err.message }, "mqtt error"));
    client.on("message", (topic, payload, packet) => {
      const msg: BusMessage = {
        topic,
        payload,
        qos: packet.qos,
        dup: packet.dup,
        responseTopic: packet.properties?.responseTopic,
        correlationData: packet.properties?.correlationData,
        expirySeconds: packet.properties?.messageExpiryInterval,
      };
      if (this.dispatch(msg) || this.held.length >= MAX_HELD) return;
      this.held.push(msg);
      this.holdObserver?.held(msg); // before mqtt.js acknowledges it, which it does when this returns
    });
  }

  /** Hands `msg` to every matching handler; false when none matched. */
  private dispatch(msg: BusMessage, only?: MessageHandler): boolean {
    let matched = false;
    for (const h of this.handlers) {
      if (!matches(h.filter, msg.topic) || (only && h.handler !== only)) continue;
      matched = true;
      try {
        h.handler(msg);
      } catch (err) {
        // One failing feature must not take down the connection's message loop.
        this.opts.logger.error({ err, topic: msg.topic }, "message handler failed");
      }
    }
    return matched;
  }

  /** Told of each message held for a handler not added yet, and when a handler has taken it: the
   *  request journal records requests the broker delivers before the request handler subscribes
   *  (a persistent session's queue arrives right after connecting), since mqtt.js acknowledges them. */
  observeHeld(o: HoldObserver | null): void {
    this.holdObserver = o;
  }

  /** Resolves once connected (immediately when already). */
  waitConnected(): Promise<void> {
    if (this.connected) return Promise.resolve();
    return new Promise((resolve) => {
      const off = this.events.on("up", () => {
        off();
        resolve();
      });
    });
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.handlers.push({ filter, handler });
    const held = this.held;
    this.held = [];
    for (const msg of held) {
      if (!this.dispatch(msg, handler)) this.held.push(msg);
      else this.holdObserver?.released(msg);
    }
    // resubscribe: mqtt.js skips a filter it already holds, and then a second feature on the same
    // filter would never get its retained messages.
    const subscription = { [filter]: { qos: this.opts.qos }, resubscribe: true } as unknown as ISubscriptionMap;
    const granted = await this.require().subscribeAsync(subscription);
    if (granted.some((g) => g.qos === 128)) throw new Error(`subscription refused: ${filter}`);
  }

  /** Unsubscribes `filter` at the broker. Its handlers stay: messages the broker sent before it
   *  processed the unsubscribe still reach them (they would otherwise be acknowledged and held). */
  async unsubscribe(filter: string): Promise<void> {
    await this.require().unsubscribeAsync(filter);
  }

  publish(topic: string, payload: string | Buffer, opts: PublishOptions = {}): Promise<void> {
    return this.send(topic, payload, opts);
  }

  /** Publishes a retained message and remembers it, to publish again after a reconnect. */
  setRetained(topic: string, payload: string): Promise<void> {
    this.retained.set(topic, payload);
    return this.send(topic, payload, { retain: true });
  }

  /** Clears a retained topic (an empty retained message) and forgets it. */
  clearRetained(topic: string): Promise<void> {
    this.retained.delete(topic);
    return this.send(topic, "", { retain: true });
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = null;
    const end = this.endSessionAtStop && this.mqtt5 && this.opts.clean === false;
    await client.endAsync(false, end ? { properties: { sessionExpiryInterval: 0 } } : {});
  }

  private send(topic: string, payload: string | Buffer, opts: PublishOptions): Promise<void> {
    const pub: IClientPublishOptions = { qos: opts.qos ?? this.opts.qos, retain: opts.retain ?? false };
    if (this.mqtt5 && opts.correlationData) pub.properties = { correlationData: opts.correlationData };
    if (this.mqtt5 && opts.expirySeconds !== undefined) pub.properties = { ...pub.properties, messageExpiryInterval: opts.expirySeconds };
    const onStored = opts.onStored;
    if (onStored) pub.cbStorePut = (err?: Error) => err === undefined && onStored();
    const client = this.require();
    if (pub.qos !== 2) return client.publishAsync(topic, payload, pub).then(() => undefined);
    // Handed to mqtt.js in this call when the window has room (and mqtt.js is not sending its store
    // again after a reconnect): onStored then runs before send returns.
    const go = () => {
      this.qos2InFlight++;
      return client
        .publishAsync(topic, payload, pub)
        .then(() => undefined)
        .finally(() => {
          this.qos2InFlight--;
          this.qos2Waiting.shift()?.();
        });
    };
    if (this.qos2InFlight < this.receiveMaximum && this.qos2Waiting.length === 0) return go();
    return new Promise<void>((resolve, reject) => this.qos2Waiting.push(() => void go().then(resolve, reject)));
  }

  private require(): MqttClient {
    if (!this.client) throw new Error("mqtt client not started");
    return this.client;
  }
}

/** Fault injection for the fleet's failover test (EDGELORA_TEST_STALL_INTAKE=1): the first request is
 *  handled but never acknowledged, and mqtt.js, which reads one packet at a time, reads nothing after
 *  it: what the broker sends this board from then on stays in transit, as for a board about to die. */
function stallIntake(client: MqttClient, logger: Logger): void {
  const handle = client.handleMessage.bind(client);
  client.handleMessage = (packet, callback) => {
    if (packet.cmd !== "publish" || !packet.topic.endsWith("/request")) return handle(packet, callback);
    logger.warn({ topic: packet.topic }, "test hook: intake stalled");
  };
}
