// `"adapter": "auto"` in the request path: the adapters a tenant may use, their tiers, and the
// router's decision, resolved before the job reaches the scheduler.
import type { AdapterTier } from "../adapters/router/policy.js";
import type { RouteDecision, Router } from "../adapters/router/router.js";
import type { TenantConfig } from "../config/schema.js";

export const AUTO = "auto";

/** What the reply carries about the choice; ms is the routing time, which comes before the
 *  request is queued (so it is not part of the reply's timings). */
export interface RouterView {
  candidates: RouteDecision["candidates"];
  chosen_because: string;
  ms: number;
}

/** Registered adapters the tenant may use: its list, or every registered one for "*". */
export function allowedAdapters(tc: TenantConfig, registry: { has(name: string): boolean; list(): { name: string }[] }): string[] {
  return tc.adapters.includes("*") ? registry.list().map((e) => e.name) : tc.adapters.filter((a) => a !== AUTO && registry.has(a));
}

/** Slots that know the adapter tiers (warm: compressed in RAM) report them; otherwise an adapter
 *  is hot when it is resident in the slot pool, else cold. */
export interface TierSource {
  tier?(name: string): AdapterTier | null;
  resident(): { name: string }[];
}

export function tierOfSlots(slots: TierSource | null): (name: string) => AdapterTier {
  if (!slots) return () => "cold";
  if (typeof slots.tier === "function") return (name) => slots.tier!(name) ?? "cold";
  return (name) => (slots.resident().some((r) => r.name === name) ? "hot" : "cold");
}

/** Routes a request's prompt tokens; the fallback is the tenant's default adapter when it may
 *  use it (and it is not "auto" itself), else the base model. */
export async function resolveAuto(
  router: Router | null,
  tc: TenantConfig,
  registry: { has(name: string): boolean; list(): { name: string }[] },
  tokens: number[],
  tierOf: (name: string) => AdapterTier,
): Promise<{ adapter: string | null; view: RouterView }> {
  const allowed = allowedAdapters(tc, registry);
  const d = tc.default_adapter;
  const fallback = d !== null && d !== AUTO && allowed.includes(d) ? d : null;
  if (!router) {
    const why = `fallback to ${fallback === null ? "the base model" : `the default adapter ${fallback}`}: no router on this engine`;
    return { adapter: fallback, view: { candidates: [], chosen_because: why, ms: 0 } };
  }
  const r = await router.route(tokens, allowed, tierOf, fallback);
  return { adapter: r.adapter, view: { candidates: r.candidates, chosen_because: r.chosen_because, ms: Math.round(r.ms * 100) / 100 } };
}
