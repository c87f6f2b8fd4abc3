// Retained state. Per board: <base>/bridge/<board>/state, {"state":"online","board":...} while this
// daemon serves; its connection's last will and a clean stop set offline. Fleet aggregate:
// <base>/bridge/state, {"state":"online"} while any board serves. A board that sees a peer go
// offline while it serves publishes the aggregate online again (the peer's aggregate will may have
// just set it offline), and so does a board that sees the aggregate go offline while it serves (the
// broker sends a dead peer's two wills in no set order: the aggregate's may come after this board
// answered the other); the last board to stop cleanly sets it offline. The bus republishes both
// after a reconnect.
import type { BusMessage } from "../mqtt/client.js";
import type { DaemonContext, Extension } from "./context.js";
import { json } from "./payloads.js";

export const ONLINE = json("bridge/state", { state: "online" });
export const OFFLINE = json("bridge/state", { state: "offline" });

export const boardState = (board: string, state: "online" | "offline", error?: string) =>
  json("bridge/state", { state, board, ...(error ? { error } : {}) });

export class BridgeState implements Extension {
  readonly name = "bridge-state";
  private readonly peers = new Map<string, "online" | "offline">();
  private serving = false;

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    const { bus, topics, boardId, modelError } = this.ctx;
    const own = topics.board(boardId).state;
    await bus.subscribe(topics.allBoardStates, (msg) => this.onPeer(msg, own));
    await bus.subscribe(topics.state, (msg) => this.onAggregate(msg));
    if (modelError) {
      await bus.setRetained(own, boardState(boardId, "offline", modelError));
      // The aggregate keeps what the other boards say; alone, this board reports the failure there.
      if (this.onlinePeers() === 0) await bus.setRetained(topics.state, json("bridge/state", { state: "offline", error: modelError }));
      return;
    }
    this.serving = true;
    await bus.setRetained(own, boardState(boardId, "online"));
    await bus.setRetained(topics.state, ONLINE);
  }

  async stop(): Promise<void> {
    const { bus, topics, boardId } = this.ctx;
    this.serving = false;
    await bus.setRetained(topics.board(boardId).state, boardState(boardId, "offline"));
    if (this.onlinePeers() === 0) await bus.setRetained(topics.state, OFFLINE);
  }

  /** Other boards whose retained state says online. */
  onlinePeers(): number {
    return [...this.peers.values()].filter((s) => s === "online").length;
  }

  private onPeer(msg: BusMessage, own: string): void {
    if (msg.topic === own) return;
    const board = msg.topic.split("/").at(-2)!;
    const state = stateOf(msg);
    const was = this.peers.get(board);
    if (state === "online") this.peers.set(board, "online");
    else this.peers.set(board, "offline");
    if (was === "online" && state !== "online" && this.serving) {
      void this.ctx.bus.setRetained(this.ctx.topics.state, ONLINE).catch(() => undefined);
    }
  }

  private onAggregate(msg: BusMessage): void {
    if (this.serving && stateOf(msg) !== "online") void this.ctx.bus.setRetained(this.ctx.topics.state, ONLINE).catch(() => undefined);
  }
}

/** The `state` of a state message; undefined for an empty retained message (the topic cleared). */
function stateOf(msg: BusMessage): unknown {
  try {
    return (JSON.parse(msg.payload.toString("utf8")) as { state?: unknown }).state;
  } catch {
    return undefined;
  }
}
