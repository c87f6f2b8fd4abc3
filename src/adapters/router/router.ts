// Adaptive adapter selection: scores the adapters a tenant may use for a prompt (classifier over
// base-model features), and picks among the top k preferring one already in memory (policy).
// Learns from example prompts (examples files, admin router/train, likelihood profiling),
// retrains on every change and keeps its state in the data dir.
import { rename } from "node:fs/promises";
import type { Logger } from "pino";
import { SoftmaxClassifier, type TrainOptions, DEFAULT_TRAIN } from "./classifier.js";
import { examplesFileIdentity, examplesFileOf, readExamplesFile } from "./examples-file.js";
import type { FeatureExtractor } from "./features.js";
import type { LikelihoodProfiler } from "./profile.js";
import { emptyState, loadState, saveState, type ExampleSource, type RouterState } from "./persistence.js";
import { choose, type AdapterTier, type Candidate, type PolicyOptions } from "./policy.js";

export interface RouterRegistry {
  has(name: string): boolean;
  list(): { name: string; path: string }[];
}

export interface RouterOptions {
  /** Null when the engine cannot give the router a context: every "auto" falls back. */
  features: FeatureExtractor | null;
  registry: RouterRegistry;
  stateFile: string | null; // null: not persisted
  policy: PolicyOptions;
  logger: Logger;
  train?: TrainOptions;
  /** Likelihood profiling of adapters without examples (router/profile); null: not offered. */
  profiler?: LikelihoodProfiler | null;
  /** Tokens of a profiled prompt scored at most. */
  profileTokens?: number;
}

export interface ProfileResult {
  prompts: number; // sample prompts scored
  candidates: string[]; // adapters each prompt was scored under
  profiled: Record<string, number>; // target adapter -> prompts it explained best (its new examples)
  ms: number;
}

export interface RouteDecision {
  adapter: string | null; // null = the base model
  candidates: Candidate[];
  chosen_because: string;
  ms: number; // time the routing took (features + classifier + policy)
}

export interface TrainResult {
  adapter: string;
  added: number; // new prompts (repeats of stored ones are not added twice)
  examples: number; // this adapter's examples now
  adapters: string[]; // every adapter the router scores
  ms: number;
}

export class Router {
  private state: RouterState;
  private classifier: SoftmaxClassifier | null = null;
  // Training steps (feature passes, retraining, saving) run one at a time.
  private training: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: RouterOptions) {
    this.state = emptyState(opts.features?.spec ?? "none");
  }

  /** False when the engine gave the router no context (every "auto" falls back). */
  get available(): boolean {
    return this.opts.features !== null;
  }

  get trained(): boolean {
    return this.classifier !== null;
  }

  /** Loads the stored state (recomputing features made under another model or pass), reads
   *  new or changed examples files of the registered adapters, and trains. */
  async start(): Promise<void> {
    const { features, stateFile, logger } = this.opts;
    if (!features) return;
    const stored = stateFile ? await loadState(stateFile).catch(async (err: unknown) => {
      // Kept aside for a person to look at, not overwritten by the next save; never a crash loop.
      const aside = `${stateFile}.corrupt-${Date.now()}`;
      await rename(stateFile, aside).catch(() => undefined);
      logger.error({ err, file: stateFile, moved_to: aside }, "router state unreadable: moved aside, starting untrained");
      return null;
    }) : null;
    if (stored) {
      this.state = stored;
      if (stored.spec !== features.spec) await this.recomputeFeatures();
      if (stored.classifier && stored.spec === features.spec) {
        try {
          this.classifier = SoftmaxClassifier.fromState(stored.classifier);
        } catch (err) {
          logger.error({ err, file: stateFile }, "stored router classifier unusable: retraining from the stored examples");
        }
      }
    }
    const changed = await this.readExamplesFiles();
    if (changed || (stored && stored.spec !== features.spec) || (!this.classifier && this.exampleCount() > 0)) await this.retrain();
  }

  /** Waits for training in progress, then frees the router's context. */
  async stop(): Promise<void> {
    await this.training;
    await this.opts.features?.dispose();
  }

  /** Adds example prompts for `adapter` and retrains. The caller checks the adapter exists. */
  train(adapter: string, prompts: string[], source: ExampleSource = "admin"): Promise<TrainResult> {
    const run = this.training.then(async () => {
      const t0 = performance.now();
      const added = await this.addExamples(adapter, prompts, source);
      if (added > 0) await this.retrain();
      return {
        adapter,
        added,
        examples: this.state.examples[adapter]?.length ?? 0,
        adapters: [...(this.classifier?.labels ?? [])],
        ms: Math.round(performance.now() - t0),
      };
    });
    this.training = run.catch(() => undefined);
    return run;
  }

  /**
   * Profiles adapters that have no examples: scores each sample prompt's likelihood under every
   * target and every adapter that has examples (mixed-adapter batches), and gives each target
   * the prompts it explains best as "profile" examples (replacing its earlier ones); retrains.
   */
  profile(targets: string[], prompts: string[]): Promise<ProfileResult> {
    const run = this.training.then(async () => {
      const { profiler, features } = this.opts;
      if (!profiler || !features) throw new Error("profiling needs the engine's side contexts");
      const t0 = performance.now();
      const labelled = Object.keys(this.state.examples).filter(
        (a) => !targets.includes(a) && this.opts.registry.has(a) && this.state.examples[a].some((e) => e.source !== "profile"),
      );
      const candidates = [...new Set([...targets, ...labelled])];
      const limit = this.opts.profileTokens ?? 128;
      const texts = [...new Set(prompts)].map((p) => ({ tokens: features.tokenize(p).slice(0, limit), from: 1 }));
      const nll = await profiler.meanNll(texts, candidates);
      const won = new Map<string, string[]>(targets.map((t) => [t, []]));
      [...new Set(prompts)].forEach((p, i) => {
        const best = candidates[nll[i].indexOf(Math.min(...nll[i]))];
        won.get(best)?.push(p);
      });
      for (const t of targets) {
        this.state.examples[t] = (this.state.examples[t] ?? []).filter((e) => e.source !== "profile");
        await this.addExamples(t, won.get(t)!, "profile");
        if (this.state.examples[t].length === 0) delete this.state.examples[t];
      }
      await this.retrain();
      return {
        prompts: texts.length,
        candidates,
        profiled: Object.fromEntries([...won].map(([t, ps]) => [t, ps.length])),
        ms: Math.round(performance.now() - t0),
      };
    });
    this.training = run.catch(() => undefined);
    return run;
  }

  /** Reads examples files of adapters registered since (or changed), and retrains if any. */
  refreshExamples(): Promise<void> {
    const run = this.training.then(async () => {
      if (this.opts.features && (await this.readExamplesFiles())) await this.retrain();
    });
    this.training = run.catch(() => undefined);
    return run;
  }

  /** Every stored example prompt (the default sample for profiling). */
  storedPrompts(): string[] {
    return [...new Set(Object.values(this.state.examples).flatMap((l) => l.map((e) => e.prompt)))];
  }

  /** Example prompts per adapter (admin status). */
  exampleCounts(): Record<string, Record<ExampleSource, number>> {
    const out: Record<string, Record<ExampleSource, number>> = {};
    for (const [name, list] of Object.entries(this.state.examples)) {
      const c = { admin: 0, file: 0, profile: 0 };
      for (const e of list) c[e.source]++;
      out[name] = c;
    }
    return out;
  }

  /** Adapters the classifier scores. */
  labels(): string[] {
    return [...(this.classifier?.labels ?? [])];
  }

  /**
   * Picks an adapter among `allowed` (registered names the tenant may use) for a prompt given as
   * tokens. Without a trained router, or with no examples for any allowed adapter, it returns
   * `fallback` (the tenant's default adapter, or null = base model) and says so.
   */
  async route(tokens: number[], allowed: string[], tierOf: (name: string) => AdapterTier, fallback: string | null): Promise<RouteDecision> {
    const t0 = performance.now();
    const fallbackDecision = (why: string): RouteDecision => ({
      adapter: fallback,
      candidates: [],
      chosen_because: `fallback to ${fallback === null ? "the base model" : `the default adapter ${fallback}`}: ${why}`,
      ms: performance.now() - t0,
    });
    const { features } = this.opts;
    if (!features) return fallbackDecision("the router has no context on this engine");
    const classifier = this.classifier;
    if (!classifier) return fallbackDecision("the router is not trained (no example prompts)");
    const allowedSet = new Set(allowed);
    const known = classifier.labels.filter((l) => allowedSet.has(l) && this.opts.registry.has(l));
    if (known.length === 0) return fallbackDecision("no adapter this tenant may use has example prompts");
    const [x] = await features.ofTokens([tokens]);
    const all = classifier.scores(x);
    // Probabilities among the adapters this tenant may use.
    const total = known.reduce((s, l) => s + (all.get(l) ?? 0), 0);
    const scores = new Map(known.map((l) => [l, total > 0 ? (all.get(l) ?? 0) / total : 1 / known.length]));
    const choice = choose(scores, tierOf, this.opts.policy);
    return { ...choice, ms: performance.now() - t0 };
  }

  private exampleCount(): number {
    return Object.values(this.state.examples).reduce((n, l) => n + l.length, 0);
  }

  private async addExamples(adapter: string, prompts: string[], source: ExampleSource): Promise<number> {
    if (!this.opts.features) throw new Error("the router has no context on this engine: it cannot learn");
    const list = (this.state.examples[adapter] ??= []);
    const seen = new Set(list.map((e) => e.prompt));
    const fresh = [...new Set(prompts)].filter((p) => !seen.has(p));
    if (fresh.length === 0) return 0;
    const xs = await this.opts.features.ofTexts(fresh);
    fresh.forEach((prompt, i) => list.push({ prompt, source, x: Array.from(xs[i]) }));
    return fresh.length;
  }

  /** Examples files of registered adapters that are new or changed since last read. */
  private async readExamplesFiles(): Promise<boolean> {
    let changed = false;
    for (const { name, path } of this.opts.registry.list()) {
      const file = examplesFileOf(path);
      const id = examplesFileIdentity(file);
      if (id === null || this.state.files[name] === id) continue;
      const { prompts, problems } = await readExamplesFile(file);
      for (const p of problems) this.opts.logger.warn({ adapter: name }, p);
      // A changed file replaces what the earlier version of it gave.
      this.state.examples[name] = (this.state.examples[name] ?? []).filter((e) => e.source !== "file");
      await this.addExamples(name, prompts, "file");
      this.state.files[name] = id;
      this.opts.logger.info({ adapter: name, file, prompts: prompts.length }, "router examples read");
      changed = true;
    }
    return changed;
  }

  private async recomputeFeatures(): Promise<void> {
    const { features, logger } = this.opts;
    logger.info({ from: this.state.spec, to: features!.spec }, "router features recomputed for this model");
    for (const list of Object.values(this.state.examples)) {
      const xs = await features!.ofTexts(list.map((e) => e.prompt));
      list.forEach((e, i) => (e.x = Array.from(xs[i])));
    }
    this.state.spec = features!.spec;
    this.state.classifier = null;
    this.classifier = null;
  }

  private async retrain(): Promise<void> {
    const examples = Object.entries(this.state.examples).flatMap(([label, list]) => list.map((e) => ({ label, x: e.x })));
    this.classifier = examples.length > 0 ? await SoftmaxClassifier.train(examples, this.classifier, this.opts.train ?? DEFAULT_TRAIN) : null;
    this.state.classifier = this.classifier?.toState() ?? null;
    if (this.opts.stateFile) await saveState(this.opts.stateFile, this.state);
    this.opts.logger.info({ adapters: this.classifier?.labels.length ?? 0, examples: examples.length }, "router trained");
  }
}
