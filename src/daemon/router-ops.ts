// Admin ops of the adapter router: router/train {adapter, prompts}, router/profile {adapters?,
// prompts?}, router/status. Bad input (unknown adapters, empty prompts) is BAD_REQUEST.
import { readExamplesFile } from "../adapters/router/examples-file.js";
import type { Router } from "../adapters/router/router.js";
import { AdminError, promptsArg, stringArg, type Op } from "./admin-args.js";
import type { DaemonContext } from "./context.js";

export function routerOps(ctx: DaemonContext): Record<string, Op> {
  const { registry } = ctx;
  return {
    "router/train": async (args) => {
      const adapter = stringArg(args, "adapter");
      if (!registry.has(adapter)) throw new AdminError("BAD_REQUEST", `unknown adapter ${JSON.stringify(adapter)}`);
      const prompts = promptsArg(args);
      if (!ctx.router?.available) throw new AdminError("BAD_REQUEST", "the router is not available (no model loaded)");
      return ctx.router.train(adapter, prompts);
    },
    "router/profile": async (args) => {
      const router = ctx.router;
      if (!router?.available) throw new AdminError("BAD_REQUEST", "the router is not available (no model loaded)");
      let targets: string[];
      if (args.adapters === undefined) {
        const known = router.exampleCounts();
        targets = registry.list().map((e) => e.name).filter((n) => !Object.hasOwn(known, n) || known[n].profile > 0);
      } else {
        if (!Array.isArray(args.adapters) || args.adapters.length === 0 || args.adapters.some((a) => typeof a !== "string"))
          throw new AdminError("BAD_REQUEST", "adapters: a non-empty array of adapter names is required");
        targets = args.adapters as string[];
        const unknown = targets.filter((a) => !registry.has(a));
        if (unknown.length) throw new AdminError("BAD_REQUEST", `unknown adapter(s) ${unknown.map((a) => JSON.stringify(a)).join(", ")}`);
      }
      if (targets.length === 0) throw new AdminError("BAD_REQUEST", "every adapter has examples: nothing to profile (name adapters to profile again)");
      const prompts = args.prompts !== undefined ? promptsArg(args) : await samplePrompts(ctx, router);
      if (prompts.length === 0) throw new AdminError("BAD_REQUEST", "no sample prompts: send prompts, set router.profile_prompts, or train some adapters first");
      return router.profile(targets, prompts);
    },
    "router/status": () => ({
      available: ctx.router?.available ?? false,
      trained: ctx.router?.trained ?? false,
      adapters: ctx.router?.labels() ?? [],
      examples: ctx.router?.exampleCounts() ?? {},
      k: ctx.config.router.k,
      margin: ctx.config.router.margin,
    }),
  };
}

/** router.profile_prompts (a .jsonl file), else the router's stored example prompts. */
async function samplePrompts(ctx: DaemonContext, router: Router): Promise<string[]> {
  const file = ctx.config.router.profile_prompts;
  if (file === null) return router.storedPrompts();
  try {
    const { prompts, problems } = await readExamplesFile(file);
    for (const p of problems) ctx.logger.warn(p);
    return prompts;
  } catch (e) {
    throw new AdminError("BAD_REQUEST", `router.profile_prompts: ${(e as Error).message}`);
  }
}
