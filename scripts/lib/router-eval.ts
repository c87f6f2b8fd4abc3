// bench:router's evaluation: accuracy of the router's scores against a likelihood ground truth,
// and a trace of requests through an LRU slot pool with and without the cache preference.
import { choose, type AdapterTier } from "../../src/adapters/router/policy.js";

/** One held-out request: the router's scores and each adapter's NLL of its continuation. */
export interface Scored {
  prompt: string;
  topic: number; // index of the topic the prompt was drawn from
  best: number; // adapter index with the lowest NLL (the ground truth)
  nll: number[]; // per adapter, mean NLL per token of the continuation
  scores: Map<string, number>; // router scores by adapter name
}

export interface Accuracy {
  top1: number;
  top3: number;
  nllGap: number; // mean NLL(chosen) - NLL(best), per token, margin 0
}

export function accuracy(items: Scored[], names: string[]): Accuracy {
  let top1 = 0, top3 = 0, gap = 0;
  for (const it of items) {
    const ranked = [...it.scores].sort((a, b) => b[1] - a[1]).map(([n]) => names.indexOf(n));
    if (ranked[0] === it.best) top1++;
    if (ranked.slice(0, 3).includes(it.best)) top3++;
    gap += it.nll[ranked[0]] - it.nll[it.best];
  }
  return { top1: top1 / items.length, top3: top3 / items.length, nllGap: gap / items.length };
}

/** Requests whose right adapter follows the paper's popularity: index floor(U^(1/alpha) * n). */
export function trace(items: Scored[], nTopics: number, alpha: number, n: number, seed: number): Scored[] {
  let s = seed >>> 0 || 1;
  const u = () => ((s = Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5), ((s ^ (s >>> 13)) >>> 0) / 2 ** 32);
  const byTopic = Array.from({ length: nTopics }, (_, t) => items.filter((it) => it.topic === t));
  return Array.from({ length: n }, () => {
    const pool = byTopic[Math.min(nTopics - 1, Math.floor(u() ** (1 / alpha) * nTopics))];
    return pool[Math.floor(u() * pool.length)];
  });
}

export interface CacheRun {
  loads: number; // adapters loaded into the pool (misses)
  nllGivenUp: number; // mean NLL(chosen) - NLL(best) per token
  agreeWithBest: number; // fraction of requests served by the ground-truth adapter
}

/** Serves `requests` through an LRU pool of `slots` adapters, each request's adapter picked by
 *  `pick` (given the pool's current tiers). */
export function runCache(requests: Scored[], names: string[], slots: number, pick: (it: Scored, tierOf: (n: string) => AdapterTier) => number): CacheRun {
  const lru: number[] = []; // most recent last
  let loads = 0, given = 0, agree = 0;
  for (const it of requests) {
    const a = pick(it, (n) => (lru.includes(names.indexOf(n)) ? "hot" : "cold"));
    const at = lru.indexOf(a);
    if (at >= 0) lru.splice(at, 1);
    else {
      loads++;
      if (lru.length === slots) lru.shift();
    }
    lru.push(a);
    given += it.nll[a] - it.nll[it.best];
    if (a === it.best) agree++;
  }
  return { loads, nllGivenUp: given / requests.length, agreeWithBest: agree / requests.length };
}

/** The router's policy with this margin (and top k). */
export const routed = (names: string[], k: number, margin: number) => (it: Scored, tierOf: (n: string) => AdapterTier) =>
  names.indexOf(choose(it.scores, tierOf, { k, margin }).adapter);

/** Naming the best adapter every time (what a user who knew it would send). */
export const namedBest = (it: Scored) => it.best;
