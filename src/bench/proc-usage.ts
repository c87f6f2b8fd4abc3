// CPU time and peak resident memory of a process and its descendants, from Linux's /proc: how much of the
// machine a server used for a run, whichever server it is (our daemon, a llama.cpp child). Elsewhere it
// reports nothing rather than wrong figures.
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import type { Usage } from "./metrics.js";

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

function readStat(pid: number): { ppid: number; cpuTicks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    const f = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) }; // utime + stime (all threads)
  } catch {
    return null; // exited meanwhile
  }
}

function peakRss(pid: number): number {
  try {
    const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmHWM:\s+(\d+) kB/m);
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** The process and its live descendants. */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const st = readStat(Number(entry));
    if (st) children.set(st.ppid, [...(children.get(st.ppid) ?? []), Number(entry)]);
  }
  const out: number[] = [];
  for (let todo = [root]; todo.length; ) {
    const pid = todo.pop()!;
    out.push(pid);
    todo.push(...(children.get(pid) ?? []));
  }
  return out;
}

export function procAvailable(pid: number): boolean {
  return existsSync(`/proc/${pid}/stat`);
}

/** Starts measuring `pid`'s tree; the returned function ends the measurement (CPU seconds since the start). */
export function measureProcessTree(pid: number): () => Usage | undefined {
  if (!procAvailable(pid)) return () => undefined;
  const start = new Map(processTree(pid).map((p) => [p, readStat(p)?.cpuTicks ?? 0]));
  return () => {
    if (!procAvailable(pid)) return undefined;
    let ticks = 0;
    let rss = 0;
    for (const p of processTree(pid)) {
      ticks += (readStat(p)?.cpuTicks ?? 0) - (start.get(p) ?? 0);
      rss += peakRss(p);
    }
    return { cpuS: ticks / clockTicks(), peakRssBytes: rss };
  };
}
