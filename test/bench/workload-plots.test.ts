import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { writeWorkloadFigures, type SweepPoint } from "../../scripts/lib/workload-plots.js";

test("the sweep's four figures are written as SVG and PNG, each server a series", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "edgelora-plots-"));
  const point = (server: string, rate: number, rps: number): SweepPoint => ({
    server, rate, requestsPerS: rps, tokensPerS: rps * 100, generatedTokensPerS: rps * 120, sloAttainment: Math.min(1, rps / rate), ttftsMs: [300, 900, 2500].map((x) => x * rate), requests: 4,
  });
  const points = [point("ours", 1, 1), point("ours", 2, 1.9), point("theirs", 1, 0.5), point("theirs", 2, 0.6)];
  const files = await writeWorkloadFigures(points, dir, 2, "test");
  t.deepEqual(files.map((f) => f.slice(dir.length + 1)), ["throughput.svg", "throughput.png", "tokens.svg", "tokens.png", "slo.svg", "slo.png", "ttft-cdf.svg", "ttft-cdf.png"]);
  for (const f of files.filter((x) => x.endsWith(".svg"))) {
    const svg = readFileSync(f, "utf8");
    t.true(svg.startsWith("<svg") && svg.includes("ours") && svg.includes("theirs"), f);
  }
  for (const f of files.filter((x) => x.endsWith(".png"))) t.deepEqual([...readFileSync(f).subarray(1, 4)], [0x50, 0x4e, 0x47], f); // "PNG"
  t.true(readFileSync(join(dir, "ttft-cdf.svg"), "utf8").includes("TTFT CDF at 2 requests/s"));
});
