// Config problems are collected, each with its path, and reported together.

export interface ConfigIssue {
  path: string; // dotted, e.g. "mqtt.port"; the env variable or file when the problem is there
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super(`invalid configuration:\n${issues.map((i) => `  ${i.path || "(root)"}: ${i.message}`).join("\n")}`);
    this.name = "ConfigError";
  }
}
