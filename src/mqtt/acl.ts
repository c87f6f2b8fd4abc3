// Who may publish and subscribe where. The same rules are in config/mosquitto/acl for an external broker.
//   daemon: everything.  admin: publish <base>/bridge/request/#, subscribe <base>/bridge/#.
//   observer: subscribe <base>/bridge/# (and Home Assistant discovery), publish nothing.
//   tenant T: publish <base>/T/request only, subscribe only filters inside <base>/T/.
import { BRIDGE } from "./topics.js";

export type Principal = { kind: "daemon" } | { kind: "admin" } | { kind: "observer"; discoveryPrefix: string } | { kind: "tenant"; name: string };

function levels(topic: string): string[] {
  return topic.split("/");
}

/** True when `topic` (a name or a filter) lies inside `prefix/…`, with the prefix levels literal
 *  (a `+` or `#` there would reach other tenants' topics). */
function inside(topic: string, prefix: string): boolean {
  const want = levels(prefix);
  const got = levels(topic);
  return got.length > want.length && want.every((l, i) => got[i] === l);
}

export function canPublish(who: Principal, base: string, topic: string): boolean {
  if (who.kind === "daemon") return true;
  if (who.kind === "admin") return inside(topic, `${base}/${BRIDGE}/request`) && !/[+#]/.test(topic);
  if (who.kind === "observer") return false;
  return topic === `${base}/${who.name}/request`;
}

export function canSubscribe(who: Principal, base: string, filter: string): boolean {
  if (who.kind === "daemon") return true;
  if (filter.startsWith("$")) return false; // $share/…, $SYS/…
  if (who.kind === "admin") return inside(filter, `${base}/${BRIDGE}`);
  if (who.kind === "observer") return inside(filter, `${base}/${BRIDGE}`) || inside(filter, who.discoveryPrefix);
  return inside(filter, `${base}/${who.name}`);
}

/** A topic the daemon may publish a tenant's reply to: inside the tenant's own namespace, not a
 *  filter and not its request topic (else one tenant could make the daemon write to another's). */
export function isTenantReplyTopic(base: string, tenant: string, topic: string): boolean {
  return inside(topic, `${base}/${tenant}`) && !/[+#]/.test(topic) && topic !== `${base}/${tenant}/request`;
}
