// Home Assistant MQTT discovery (homeassistant.enabled): one device per board, with a connectivity
// sensor from bridge/<board>/state and sensors from bridge/<board>/metrics, published retained under
// the discovery prefix. Home Assistant reads them with the observer login (read-only).
import type { DaemonContext, Extension } from "./context.js";

const SENSORS = [
  { id: "queue_depth", name: "Queue depth", template: "{{ value_json.queue_depth }}", unit: undefined },
  { id: "active_sequences", name: "Active sequences", template: "{{ value_json.active_sequences }}", unit: undefined },
  { id: "tokens_per_second", name: "Tokens per second", template: "{{ value_json.tokens_per_second }}", unit: "tok/s" },
  { id: "completed", name: "Completed requests", template: "{{ value_json.completed }}", unit: undefined },
];

export function discoveryMessages(ctx: DaemonContext): { topic: string; config: Record<string, unknown> }[] {
  const node = `edgelora_${ctx.boardId}`;
  const topics = ctx.topics.board(ctx.boardId);
  const prefix = ctx.config.homeassistant.discovery_prefix;
  const device = { identifiers: [node], name: `edgelora ${ctx.boardId}`, manufacturer: "edgelora", model: ctx.engine?.info.name ?? "edgelora", sw_version: ctx.version };
  const availability = { topic: topics.state, value_template: "{{ value_json.state }}", payload_available: "online", payload_not_available: "offline" };
  return [
    {
      topic: `${prefix}/binary_sensor/${node}/connectivity/config`,
      config: {
        name: "Connectivity", unique_id: `${node}_connectivity`, device_class: "connectivity", state_topic: topics.state,
        value_template: "{{ value_json.state }}", payload_on: "online", payload_off: "offline", device,
      },
    },
    ...SENSORS.map((s) => ({
      topic: `${prefix}/sensor/${node}/${s.id}/config`,
      config: {
        name: s.name, unique_id: `${node}_${s.id}`, state_topic: topics.metrics, value_template: s.template,
        state_class: "measurement", ...(s.unit ? { unit_of_measurement: s.unit } : {}), availability, device,
      },
    })),
  ];
}

export class HomeAssistant implements Extension {
  readonly name = "homeassistant";

  constructor(private readonly ctx: DaemonContext) {}

  async start(): Promise<void> {
    for (const m of discoveryMessages(this.ctx)) await this.ctx.bus.setRetained(m.topic, JSON.stringify(m.config));
  }

  async stop(): Promise<void> {}
}
