// The topic map of the MQTT contract (DESIGN.md), from the configurable base topic.

export const BRIDGE = "bridge"; // reserved: not a tenant name
/** Reserved too: boards' private topics (job ledger, forwarded requests, cancels). Tenants'
 *  prompts travel there, so it lies outside bridge/#, which the admin and observers read. */
export const FLEET = "fleet";

export interface Topics {
  base: string;
  request(tenant: string): string;
  response(tenant: string): string;
  /** Wildcard the daemon subscribes to for every tenant's requests. */
  allRequests: string;
  state: string;
  info: string;
  metrics: string;
  /** Per board (daemon.board_id): its own retained state (with its own last will), info, metrics
   *  and the adapters it advertises for affinity routing. */
  board(id: string): { state: string; info: string; metrics: string; adapters: string };
  /** Every board's state / adapter advertisement (wildcards). */
  allBoardStates: string;
  allBoardAdapters: string;
  /** Board-private topics of the fleet protocol (see src/fleet/). */
  fleet(id: string): { forward: string; accepted: string; cancel: string; jobs: string };
  /** A job ledger entry: <base>/fleet/<board>/jobs/<tenant>/<transaction, URI-encoded>. */
  job(board: string, tenant: string, transaction: string): string;
  /** Every board's job ledger (wildcard). */
  allJobs: string;
  /** A transaction a board answered, with its reply: <base>/fleet/<board>/answered/<tenant>/<transaction>. */
  answered(board: string, tenant: string, transaction: string): string;
  allAnswered: string;
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
    board: (id) => ({
      state: `${base}/${BRIDGE}/${id}/state`,
      info: `${base}/${BRIDGE}/${id}/info`,
      metrics: `${base}/${BRIDGE}/${id}/metrics`,
      adapters: `${base}/${BRIDGE}/${id}/adapters`,
    }),
    allBoardStates: `${base}/${BRIDGE}/+/state`,
    allBoardAdapters: `${base}/${BRIDGE}/+/adapters`,
    fleet: (id) => ({
      forward: `${base}/${FLEET}/${id}/forward`,
      accepted: `${base}/${FLEET}/${id}/accepted`,
      cancel: `${base}/${FLEET}/${id}/cancel`,
      jobs: `${base}/${FLEET}/${id}/jobs/#`,
    }),
    job: (board, tenant, transaction) => `${base}/${FLEET}/${board}/jobs/${tenant}/${encodeURIComponent(transaction)}`,
    allJobs: `${base}/${FLEET}/+/jobs/#`,
    answered: (board, tenant, transaction) => `${base}/${FLEET}/${board}/answered/${tenant}/${encodeURIComponent(transaction)}`,
    allAnswered: `${base}/${FLEET}/+/answered/#`,
    adminRequest: (op) => `${base}/${BRIDGE}/request/${op}`,
    adminResponse: (op) => `${base}/${BRIDGE}/response/${op}`,
    allAdminRequests: `${base}/${BRIDGE}/request/#`,
    tenantOfRequest(topic) {
      if (!topic.startsWith(`${base}/`)) return null;
      const rest = topic.slice(base.length + 1).split("/");
      return rest.length === 2 && rest[1] === "request" && rest[0] !== BRIDGE && rest[0] !== FLEET && rest[0] !== "" ? rest[0] : null;
    },
    adminOp(topic) {
      const prefix = `${base}/${BRIDGE}/request/`;
      return topic.startsWith(prefix) && topic.length > prefix.length ? topic.slice(prefix.length) : null;
    },
  };
}
