// MQTT topic filter matching [MQTT-4.7]: `+` one level, `#` the rest (including none).

/** `$share/<group>/<filter>` subscribes `<filter>`; messages arrive with the plain topic. */
export function stripShare(filter: string): string {
  return filter.startsWith("$share/") ? filter.split("/").slice(2).join("/") : filter;
}

export function matches(filter: string, topic: string): boolean {
  const f = stripShare(filter).split("/");
  const t = topic.split("/");
  // Wildcards at the first level do not match $-topics [MQTT-4.7.2-1].
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
