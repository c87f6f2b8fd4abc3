// The router's choice among scored adapters: the top k by score; among those within `margin`
// of the best, one already in memory (hot, then warm) is preferred, since picking it saves a
// swap; otherwise the best. margin 0 = always the best.

export type AdapterTier = "hot" | "warm" | "cold";

export interface Candidate {
  adapter: string;
  score: number;
  tier: AdapterTier;
}

export interface RouteChoice {
  adapter: string;
  candidates: Candidate[];
  chosen_because: string;
}

export interface PolicyOptions {
  k: number;
  margin: number;
}

const TIER_ORDER: Record<AdapterTier, number> = { hot: 0, warm: 1, cold: 2 };

/** `scores` must hold at least one adapter. Ties in score go to the name that sorts first. */
export function choose(scores: Map<string, number>, tierOf: (name: string) => AdapterTier, opts: PolicyOptions): RouteChoice {
  if (scores.size === 0) throw new Error("choose: no scored adapters");
  const candidates: Candidate[] = [...scores]
    .sort(([a, sa], [b, sb]) => sb - sa || a.localeCompare(b))
    .slice(0, Math.max(1, opts.k))
    .map(([adapter, score]) => ({ adapter, score, tier: tierOf(adapter) }));
  const best = candidates[0];
  const close = candidates.filter((c) => best.score - c.score <= opts.margin);
  // The first of the closest tier: candidates are in score order, so the best of that tier.
  const pick = close.reduce((a, c) => (TIER_ORDER[c.tier] < TIER_ORDER[a.tier] ? c : a), close[0]);
  const because =
    pick === best
      ? `highest score (${fmt(best.score)})${best.tier === "cold" ? "" : `, ${best.tier}`}`
      : `${pick.tier} and within margin ${opts.margin} of the best (${best.adapter}: ${fmt(best.score)}, ${best.tier}; ${pick.adapter}: ${fmt(pick.score)})`;
  return { adapter: pick.adapter, candidates, chosen_because: because };
}

function fmt(x: number): string {
  return x.toFixed(3);
}
