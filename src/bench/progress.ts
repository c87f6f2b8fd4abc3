// A progress bar on stderr while a workload runs (requests answered of the trace, errors, elapsed time); on a
// non-terminal stderr (a CI log) a line every few seconds instead.
import { SingleBar } from "cli-progress";
import type { Progress } from "./mqtt-driver.js";

export interface ProgressDisplay {
  update(p: Progress): void;
  stop(): void;
}

export function progressBar(label: string): ProgressDisplay {
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} answered | sent {sent} | errors {errors} | {elapsed}s`,
    stream: process.stderr,
    noTTYOutput: true,
    notTTYSchedule: 5000,
    hideCursor: false,
  });
  let started = false;
  return {
    update(p) {
      const payload = { sent: p.sent, errors: p.errors, elapsed: p.elapsedS.toFixed(0) };
      if (!started) {
        bar.start(p.total, p.done, payload);
        started = true;
      } else bar.update(p.done, payload);
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
