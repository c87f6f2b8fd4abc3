export { loadConfig, DEFAULT_CONFIG_FILE, type LoadOptions } from "./load.js";
export { ConfigError, type ConfigIssue } from "./errors.js";
export type { Config, TenantConfig } from "./schema.js";
