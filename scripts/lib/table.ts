// Plain-text tables in Markdown pipe syntax: readable in a terminal, pasteable into a report.

/** Numbers and "n/a" are right-aligned, other cells left-aligned. */
export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? "").length)));
  const numeric = (s: string) => /^[-+]?[\d.]+[x%]?$|^n\/a$/.test(s);
  const line = (cells: string[]) =>
    `| ${cells.map((s, c) => (numeric(s) ? s.padStart(widths[c]) : s.padEnd(widths[c]))).join(" | ")} |`;
  const rule = `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`;
  return [line(header), rule, ...rows.map((r) => line(header.map((_, c) => r[c] ?? "")))].join("\n");
}

/** Fixed decimals, or "n/a" for a missing value. */
export function fmt(x: number | undefined, digits = 1, suffix = ""): string {
  return x === undefined || !Number.isFinite(x) ? "n/a" : `${x.toFixed(digits)}${suffix}`;
}
