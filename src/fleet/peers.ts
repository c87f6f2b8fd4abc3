// What this board knows of the others, from their retained topics: bridge/<board>/state (online or
// offline; the will says offline when a board dies) and bridge/<board>/adapters (the adapters it
// holds, its load and its MQTT client id). "down" is emitted when a board that was online goes offline.
import type { Bus, BusMessage } from "../mqtt/client.js";
import type { Topics } from "../mqtt/topics.js";
import { TypedEvents } from "../runtime/events.js";
import { jsonOf } from "./wire.js";

export interface Peer {
  board: string;
  online: boolean;
  hot: string[]; // adapters it can run without loading
  load: number; // queued + running requests when it last advertised
  capacity: number; // sequences it runs at once (scheduler.max_sequences)
  session: string | null; // its MQTT client id: a peer adopts its session when it dies
}

export class PeerView {
  /** down: the board that went offline. */
  readonly events: TypedEvents<{ down: string }>;
  private readonly peers = new Map<string, Peer>();

  constructor(
    private readonly bus: Bus,
    private readonly topics: Topics,
    private readonly self: string,
  ) {
    this.events = new TypedEvents(bus.opts.logger);
  }

  async start(): Promise<void> {
    await this.bus.subscribe(this.topics.allBoardStates, (m) => this.onState(m));
    await this.bus.subscribe(this.topics.allBoardAdapters, (m) => this.onAdapters(m));
  }

  /** What this board knows of `board` (null: nothing). */
  get(board: string): Peer | null {
    return this.peers.get(board) ?? null;
  }

  /** Online boards other than this one. */
  online(): Peer[] {
    return [...this.peers.values()].filter((p) => p.online);
  }

  private peer(topic: string): Peer | null {
    const board = topic.split("/").at(-2)!;
    if (board === this.self) return null;
    let p = this.peers.get(board);
    if (!p) this.peers.set(board, (p = { board, online: false, hot: [], load: 0, capacity: 1, session: null }));
    return p;
  }

  private onState(m: BusMessage): void {
    const p = this.peer(m.topic);
    if (!p) return;
    const was = p.online;
    p.online = jsonOf(m.payload)?.state === "online";
    if (was && !p.online) this.events.emit("down", p.board);
  }

  private onAdapters(m: BusMessage): void {
    const p = this.peer(m.topic);
    const ad = jsonOf(m.payload);
    if (!p || !ad) return;
    p.hot = Array.isArray(ad.hot) ? ad.hot.filter((n): n is string => typeof n === "string") : [];
    p.load = typeof ad.load === "number" ? ad.load : 0;
    p.capacity = typeof ad.capacity === "number" ? ad.capacity : 1;
    p.session = typeof ad.session === "string" ? ad.session : null;
  }
}
