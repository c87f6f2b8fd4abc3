// The topic map of the MQTT contract (DESIGN.md), from the configurable base topic.

export const BRIDGE = "bridge"; // reserved: not a tenant name

export interface Topics {
  base: string;
  request(tenant: string): string;
  response(tenant: string): string;
  /** Wildcard the daemon subscribes to for every tenant's requests. */
  allRequests: string;
  state: string;
  info: string;
  metrics: string;
  adminRequest(op: string): string;
  adminResponse(op: string): string;
  /** Wildcard for every admin op (ops may have several levels: adapters/list). */
  allAdminRequests: string;
  /** tenant of an `<base>/<tenant>/request` topic, else null */
  tenantOfRequest(topic: string): string | null;
  /** op of an `<base>/bridge/request/<op…>` topic, else null */
  adminOp(topic: string): string | null;
}

export function topics(base: string): Topics {
  return {
    base,
    request: (t) => `${base}/${t}/request`,
    response: (t) => `${base}/${t}/response`,
    allRequests: `${base}/+/request`,
    state: `${base}/${BRIDGE}/state`,
    info: `${base}/${BRIDGE}/info`,
    metrics: `${base}/${BRIDGE}/metrics`,
    adminRequest: (op) => `${base}/${BRIDGE}/request/${op}`,
    adminResponse: (op) => `${base}/${BRIDGE}/response/${op}`,
    allAdminRequests: `${base}/${BRIDGE}/request/#`,
    tenantOfRequest(topic) {
      if (!topic.startsWith(`${base}/`)) return null;
      const rest = topic.slice(base.length + 1).split("/");
      return rest.length === 2 && rest[1] === "request" && rest[0] !== BRIDGE && rest[0] !== "" ? rest[0] : null;
    },
    adminOp(topic) {
      const prefix = `${base}/${BRIDGE}/request/`;
      return topic.startsWith(prefix) && topic.length > prefix.length ? topic.slice(prefix.length) : null;
    },
  };
}
