// The configuration's JSON schema (validated with ajv) and the matching TypeScript type.
// Keys are snake_case because they are what users write in YAML and in EDGELORA_<SECTION>_<KEY>.

import { WARM_COMPRESSIONS, type WarmCompression } from "../adapters/store/memory-warm.js";
import { WARM_POLICIES, type WarmPolicyName } from "../adapters/store/policy.js";
import { LORA_POOL_TYPES, type LoraPoolType } from "../engine/types.js";

export interface TenantConfig {
  password_hash: string; // see src/mqtt/password.ts for the format
  adapters: string[]; // allow-list; "*" allows every registered adapter; default [] (base model only)
  default_adapter: string | null; // used when a request names no adapter; default null (base model); "auto" = routed
}

export interface Config {
  daemon: {
    data_dir: string;
    shutdown_grace_ms: number;
    log_level: string;
    board_id: string | null; // this board's name in bridge/<board_id>/...; null: the hostname
    journal: boolean; // record accepted requests in <data_dir>/requests.journal until answered
    exactly_once: boolean; // single board, external broker: final replies at QoS 2, in-flight packets kept in <data_dir>/outgoing.store
  };
  mqtt: {
    base_topic: string;
    embedded: boolean; // run the aedes broker in-process
    host: string; // embedded broker bind address
    port: number;
    url: string | null; // external broker, e.g. mqtts://broker:8883 (used when embedded is false)
    username: string | null;
    password: string | null;
    client_id: string | null;
    qos: 0 | 1 | 2;
    keepalive_s: number;
    reconnect_ms: number;
    shared_subscription: boolean; // $share/edgelora/... on an external MQTT 5 broker
    max_payload_bytes: number;
    stream_chunk_ms: number; // streamed replies: later pieces gathered per this many ms (0: a chunk per piece)
    stream_chunk_tokens: number; // ... or per this many pieces, whichever comes first
    stream_chunk_qos: 0 | 1 | 2; // chunks; the final message keeps mqtt.qos
    tls: { ca: string | null; cert: string | null; key: string | null; reject_unauthorized: boolean };
  };
  model: {
    path: string | null; // null: the demo model in data_dir
    threads: number | null; // null: the machine's cores (os.availableParallelism())
    n_ctx: number;
    kv_type: "f32" | "f16";
    lora_slots: number;
    lora_max_rank: number;
    lora_pool_type: LoraPoolType;
    chat_template: string | null; // overrides tokenizer.chat_template from the GGUF
  };
  scheduler: {
    max_batch_tokens: number;
    max_sequences: number;
    prefill_chunk: number;
    max_queue: number;
    per_tenant_in_flight: number;
    per_tenant_queue: number;
    max_pass_over: number; // times a request may be passed over for ones whose adapters are resident
    default_max_tokens: number;
    max_tokens_limit: number;
    request_timeout_ms: number;
  };
  adapters: {
    directory: string | null;
    entries: Record<string, string>;
    warm: {
      backend: "memory" | "directory" | "off"; // directory: a zram-backed mount (hw/zram-warm.sh)
      budget_mb: number;
      directory: string | null; // for backend "directory"
      compression: WarmCompression; // memory backend only
      policy: WarmPolicyName;
    };
    prefetch: boolean; // move a queued request's adapter up as soon as it is accepted
    prewarm: boolean; // while idle, load the most requested adapters into warm
  };
  router: {
    k: number; // candidates the policy considers (the top k by score)
    margin: number; // prefer an adapter in memory whose score is within this of the best; 0 = always the best
    feature_layers: number; // layers of the base model the feature pass runs (0 = token embeddings; -1 = all)
    max_prompt_tokens: number; // the first tokens of a prompt the features read
    profile_prompts: string | null; // .jsonl of sample prompts for router/profile (null: the stored example prompts)
  };
  tenants: Record<string, TenantConfig>;
  admin: { username: string; password_hash: string | null };
  observer: { username: string; password_hash: string | null }; // reads bridge/#, publishes nothing
  fleet: { affinity: boolean; forward_timeout_ms: number; advertise_interval_ms: number; session_expiry_s: number };
  leds: {
    backend: "none" | "sysfs" | "gpio";
    sysfs_root: string;
    gpio_root: string;
    gpio_chip_label: string;
    status: string | null; // LED class name (sysfs) or GPIO line offset (gpio)
  };
  homeassistant: { enabled: boolean; discovery_prefix: string };
  metrics: { interval_s: number };
  systemd: { notify: boolean };
}

const str = { type: "string", minLength: 1 } as const;
const nullableStr = { type: ["string", "null"] } as const;
const posInt = { type: "integer", minimum: 1 } as const;

function section(properties: Record<string, unknown>) {
  return { type: "object", additionalProperties: false, required: Object.keys(properties), properties };
}

export const configSchema = {
  type: "object",
  additionalProperties: false,
  required: ["daemon", "mqtt", "model", "scheduler", "adapters", "router", "tenants", "admin", "observer", "fleet", "leds", "homeassistant", "metrics", "systemd"],
  properties: {
    daemon: section({
      data_dir: str,
      shutdown_grace_ms: { type: "integer", minimum: 0 },
      log_level: { enum: ["fatal", "error", "warn", "info", "debug", "trace", "silent"] },
      // Not an MQTT level that other bridge topics use (request, response).
      board_id: { type: ["string", "null"], pattern: "^[A-Za-z0-9_-]{1,64}$", not: { enum: ["request", "response"] } },
      journal: { type: "boolean" },
      exactly_once: { type: "boolean" },
    }),
    mqtt: section({
      base_topic: { type: "string", pattern: "^[^#+/$][^#+]*[^#+/]$|^[^#+/$]$" },
      embedded: { type: "boolean" },
      host: str,
      port: { type: "integer", minimum: 0, maximum: 65535 },
      url: { type: ["string", "null"], pattern: "^(mqtts?|wss?|tcp|ssl)://" },
      username: nullableStr,
      password: nullableStr,
      client_id: nullableStr,
      qos: { enum: [0, 1, 2] },
      keepalive_s: posInt,
      reconnect_ms: posInt,
      shared_subscription: { type: "boolean" },
      max_payload_bytes: { type: "integer", minimum: 64 },
      stream_chunk_ms: { type: "integer", minimum: 0 },
      stream_chunk_tokens: posInt,
      stream_chunk_qos: { enum: [0, 1, 2] },
      tls: section({
        ca: nullableStr,
        cert: nullableStr,
        key: nullableStr,
        reject_unauthorized: { type: "boolean" },
      }),
    }),
    model: section({
      path: nullableStr,
      threads: { type: ["integer", "null"], minimum: 1 },
      n_ctx: { type: "integer", minimum: 16 },
      kv_type: { enum: ["f32", "f16"] },
      lora_slots: posInt,
      lora_max_rank: posInt,
      lora_pool_type: { enum: [...LORA_POOL_TYPES] },
      chat_template: nullableStr,
    }),
    scheduler: section({
      max_batch_tokens: posInt,
      max_sequences: posInt,
      prefill_chunk: posInt,
      max_queue: posInt,
      per_tenant_in_flight: posInt,
      per_tenant_queue: posInt,
      max_pass_over: { type: "integer", minimum: 0 },
      default_max_tokens: posInt,
      max_tokens_limit: posInt,
      request_timeout_ms: posInt,
    }),
    adapters: section({
      directory: nullableStr,
      entries: { type: "object", additionalProperties: str, propertyNames: { pattern: "^[A-Za-z0-9_.-]+$", not: { enum: ["auto"] } } },
      warm: section({
        backend: { enum: ["memory", "directory", "off"] },
        budget_mb: { type: "number", minimum: 0 },
        directory: nullableStr,
        compression: { enum: [...WARM_COMPRESSIONS] },
        policy: { enum: [...WARM_POLICIES] },
      }),
      prefetch: { type: "boolean" },
      prewarm: { type: "boolean" },
    }),
    router: section({
      k: posInt,
      margin: { type: "number", minimum: 0, maximum: 1 },
      feature_layers: { type: "integer", minimum: -1 },
      max_prompt_tokens: posInt,
      profile_prompts: nullableStr,
    }),
    tenants: {
      type: "object",
      propertyNames: { pattern: "^[A-Za-z0-9_-]+$", not: { enum: ["bridge", "fleet"] } },
      additionalProperties: {
        type: "object",
        additionalProperties: false,
        required: ["password_hash"],
        properties: {
          password_hash: str,
          adapters: { type: "array", items: str, default: [] },
          default_adapter: { ...nullableStr, default: null },
        },
      },
    },
    admin: section({ username: str, password_hash: nullableStr }),
    observer: section({ username: str, password_hash: nullableStr }),
    fleet: section({ affinity: { type: "boolean" }, forward_timeout_ms: posInt, advertise_interval_ms: posInt, session_expiry_s: posInt }),
    leds: section({
      backend: { enum: ["none", "sysfs", "gpio"] },
      sysfs_root: str,
      gpio_root: str,
      gpio_chip_label: str,
      status: nullableStr,
    }),
    homeassistant: section({ enabled: { type: "boolean" }, discovery_prefix: str }),
    metrics: section({ interval_s: { type: "number", minimum: 0 } }),
    systemd: section({ notify: { type: "boolean" } }),
  },
} as const;
