import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig, ConfigError } from "../../src/config/index.js";

function yamlFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), "edgelora-cfg-")), "config.yaml");
  writeFileSync(file, text);
  return file;
}

function issues(fn: () => unknown): { path: string; message: string }[] {
  const err = (() => {
    try {
      fn();
    } catch (e) {
      return e;
    }
    return null;
  })();
  if (!(err instanceof ConfigError)) throw new Error("expected a ConfigError");
  return err.issues;
}

test("defaults load and validate", (t) => {
  const cfg = loadConfig({ env: {} });
  t.is(cfg.mqtt.port, 1883);
  t.is(cfg.mqtt.base_topic, "edgelora");
  t.is(cfg.model.path, null);
  t.deepEqual(cfg.tenants, {});
});

test("a --config file merges over the defaults, tenant fields get defaults", (t) => {
  const file = yamlFile("mqtt:\n  port: 2883\ntenants:\n  carol:\n    password_hash: x\n");
  const cfg = loadConfig({ file, env: {} });
  t.is(cfg.mqtt.port, 2883);
  t.is(cfg.mqtt.host, "127.0.0.1");
  t.deepEqual(cfg.tenants.carol, { password_hash: "x", adapters: [], default_adapter: null });
});

test("env overrides resolve underscored keys, nested sections and types", (t) => {
  const cfg = loadConfig({
    env: {
      EDGELORA_MQTT_PORT: "1999",
      EDGELORA_MQTT_BASE_TOPIC: "home/llm",
      EDGELORA_MQTT_TLS_REJECT_UNAUTHORIZED: "false",
      EDGELORA_MODEL_PATH: "/models/x.gguf",
      EDGELORA_TENANTS_DAVE_PASSWORD_HASH: "h",
      EDGELORA_TENANTS_DAVE_ADAPTERS: "a,b",
      EDGELORA_UNRELATED_THING: "ignored",
    },
  });
  t.is(cfg.mqtt.port, 1999);
  t.is(cfg.mqtt.base_topic, "home/llm");
  t.false(cfg.mqtt.tls.reject_unauthorized);
  t.is(cfg.model.path, "/models/x.gguf");
  t.deepEqual(cfg.tenants.dave.adapters, ["a", "b"]);
});

test("every validation error is reported with its path", (t) => {
  const file = yamlFile("mqtt:\n  port: 70000\n  qos: 3\n  colour: red\nmodel:\n  n_ctx: two\ntenants:\n  eve: {}\n");
  const found = issues(() => loadConfig({ file, env: { EDGELORA_LEDS_BACKEND: "blinkenlights" } }));
  const paths = found.map((i) => i.path).sort();
  t.deepEqual(paths, ["leds.backend", "model.n_ctx", "mqtt.colour", "mqtt.port", "mqtt.qos", "tenants.eve.password_hash"]);
  t.regex(found.find((i) => i.path === "mqtt.colour")!.message, /unknown setting/);
  t.regex(found.find((i) => i.path === "leds.backend")!.message, /one of/);
});

test("unknown env settings, unparsable YAML and a reserved tenant name are reported", (t) => {
  t.deepEqual(issues(() => loadConfig({ env: { EDGELORA_MQTT_PROT: "1" } })), [{ path: "EDGELORA_MQTT_PROT", message: "no such setting" }]);
  const bad = yamlFile("mqtt:\n  port: [1\n");
  t.true(issues(() => loadConfig({ file: bad, env: {} }))[0].path.startsWith(bad));
  const reserved = yamlFile("tenants:\n  bridge:\n    password_hash: x\n");
  t.true(issues(() => loadConfig({ file: reserved, env: {} })).some((i) => i.path === "tenants" && /bridge/.test(i.message)));
});

test("model.threads defaults to null (the machine's cores); the streaming chunk settings validate", (t) => {
  const cfg = loadConfig({ env: {} });
  t.is(cfg.model.threads, null);
  t.is(loadConfig({ env: { EDGELORA_MODEL_THREADS: "3" } }).model.threads, 3);
  t.deepEqual(issues(() => loadConfig({ env: { EDGELORA_MODEL_THREADS: "0" } })).map((i) => i.path), ["model.threads"]);
  t.deepEqual([cfg.mqtt.stream_chunk_ms, cfg.mqtt.stream_chunk_tokens, cfg.mqtt.stream_chunk_qos], [100, 16, 0]);
  t.deepEqual(issues(() => loadConfig({ env: { EDGELORA_MQTT_STREAM_CHUNK_QOS: "3" } })).map((i) => i.path), ["mqtt.stream_chunk_qos"]);
});
