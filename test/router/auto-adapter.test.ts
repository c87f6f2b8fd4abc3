// The request path's helpers for "auto": the adapters a tenant may use, the tiers it sees, and
// the fallback when no router can run.
import test from "ava";
import { allowedAdapters, resolveAuto, tierOfSlots } from "../../src/daemon/auto-adapter.js";

const registry = {
  names: ["chef", "pirate", "poet"],
  has(n: string) {
    return this.names.includes(n);
  },
  list() {
    return this.names.map((name) => ({ name }));
  },
};
const tenant = (adapters: string[], default_adapter: string | null) => ({ password_hash: "x", adapters, default_adapter });

test("allowed adapters: the tenant's list of registered names, or every registered one for *", (t) => {
  t.deepEqual(allowedAdapters(tenant(["poet", "gone", "auto"], null), registry), ["poet"]);
  t.deepEqual(allowedAdapters(tenant(["*"], null), registry), ["chef", "pirate", "poet"]);
  t.deepEqual(allowedAdapters(tenant([], null), registry), []);
});

test("tiers: from the slots' own tier() when they have one, else resident = hot", (t) => {
  const resident = () => [{ name: "poet" }];
  const plain = tierOfSlots({ resident });
  t.is(plain("poet"), "hot");
  t.is(plain("chef"), "cold");
  const tiered = tierOfSlots({ resident, tier: (n) => (n === "chef" ? "warm" : n === "poet" ? "hot" : null) });
  t.is(tiered("chef"), "warm");
  t.is(tiered("poet"), "hot");
  t.is(tiered("pirate"), "cold");
  t.is(tierOfSlots(null)("poet"), "cold");
});

test("no router: the default adapter when the tenant may use it, else the base model", async (t) => {
  const cold = () => "cold" as const;
  const a = await resolveAuto(null, tenant(["poet", "chef"], "chef"), registry, [1, 2], cold);
  t.is(a.adapter, "chef");
  t.regex(a.view.chosen_because, /fallback to the default adapter chef/);
  t.deepEqual(a.view.candidates, []);
  t.is((await resolveAuto(null, tenant(["poet"], "chef"), registry, [1], cold)).adapter, null, "a default it may not use is not used");
  t.is((await resolveAuto(null, tenant(["*"], "auto"), registry, [1], cold)).adapter, null);
});
