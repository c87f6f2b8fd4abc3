// `edgelora serve [--config FILE]` and `edgelora hash-password [PASSWORD]` for the commander CLI.
import { availableParallelism } from "node:os";
import type { Command } from "commander";
import { pino, type Logger } from "pino";
import { ConfigError, loadConfig, type Config } from "../config/index.js";
import { basename } from "node:path";

import { NativeEngine } from "../engine/engine.js";
import { logReporter, type LoadReporter } from "../engine/load-progress.js";
import { NoLed, openStatusLed, type Led } from "../leds/index.js";
import { hashPassword } from "../mqtt/password.js";
import { resolveModelRef } from "../pull/model-ref.js";
import { Controller } from "./controller.js";
import { demoInstructions, demoTenants, ensureDemoAssets } from "./demo.js";

export function registerServeCommand(program: Command): void {
  program
    .command("serve")
    .description("run the daemon: MQTT broker/client, engine and scheduler")
    .option("-c, --config <file>", "YAML config merged over config/default.yaml")
    .action(async (opts: { config?: string }) => {
      process.exit(await serve(opts.config));
    });
  program
    .command("hash-password")
    .description("print a password hash for tenants.<name>.password_hash / admin.password_hash")
    .argument("[password]", "the password (read from stdin when absent)")
    .action(async (password?: string) => {
      const pw = password ?? (await readStdin()).replace(/\r?\n$/, "");
      if (pw === "") {
        process.stderr.write("empty password\n");
        process.exitCode = 2;
        return;
      }
      process.stdout.write(`${await hashPassword(pw)}\n`);
    });
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/** Runs until SIGTERM/SIGINT; resolves the exit code (0 after a graceful stop, 2 for a bad config). */
async function serve(configFile: string | undefined): Promise<number> {
  let config: Config;
  try {
    config = loadConfig({ file: configFile });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`edgelora: ${e.message}\n`);
    return 2;
  }
  const logger = pino({ level: config.daemon.log_level });
  const demoModel = config.model.path === null;
  const demo = demoModel ? await ensureDemoAssets(config.daemon.data_dir) : null;
  const modelPath = config.model.path !== null ? resolveModelRef(config.model.path, config.daemon.data_dir) : demo!.modelPath;
  if (demo) config.adapters.directory ??= demo.adapterDir;
  const demoTenantsOn = demo !== null && Object.keys(config.tenants).length === 0;
  if (demoTenantsOn) config.tenants = await demoTenants(demo.adapters);
  if (Object.keys(config.tenants).length === 0) logger.warn("no tenants configured: nobody can send requests (see tenants in config/default.yaml)");

  const controller = new Controller({
    config,
    logger,
    modelPath,
    led: await statusLed(config, logger),
    openEngine: (path) => openNativeEngine(path, config, logReporter(basename(path), (f, m) => logger.info(f, m))),
  });
  await controller.start();
  const port = controller.brokerPort ?? config.mqtt.port;
  for (const line of demoInstructions(config, demo, demoTenantsOn, port).split("\n").filter(Boolean)) logger.info(line);
  logger.info({ base_topic: config.mqtt.base_topic }, "edgelora serving");

  await new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      logger.info({ signal, grace_ms: config.daemon.shutdown_grace_ms }, "shutting down");
      // A second signal does not wait for the drain.
      process.once("SIGTERM", () => process.exit(1));
      process.once("SIGINT", () => process.exit(1));
      controller.stop().then(resolve, (err: unknown) => {
        logger.error({ err }, "shutdown failed");
        resolve();
      });
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
  return 0;
}

/** The native engine with the context the config asks for (one sequence id per scheduler slot). */
export function openNativeEngine(path: string, config: Config, reporter?: LoadReporter): Promise<NativeEngine> {
  const m = config.model;
  const s = config.scheduler;
  return NativeEngine.open(path, {
    threads: m.threads ?? availableParallelism(), nCtx: m.n_ctx, nSeqMax: s.max_sequences, nBatchMax: s.max_batch_tokens,
    kvType: m.kv_type, loraSlots: m.lora_slots, loraMaxRank: m.lora_max_rank, loraPoolType: m.lora_pool_type,
  }, reporter);
}

async function statusLed(config: Config, logger: Logger): Promise<Led> {
  try {
    return await openStatusLed(config.leds);
  } catch (err) {
    logger.warn({ err }, "status LED unavailable: running without it");
    return new NoLed();
  }
}
