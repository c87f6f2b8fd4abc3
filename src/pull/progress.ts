// Download progress: a cli-progress bar with MB, speed and ETA on a terminal, else a line at most
// every 10% and 2 s with MB/s (what a log or a pipe can hold).
import cliProgress from "cli-progress";

import type { DownloadProgress } from "./download.js";

const MB = 1024 * 1024;

export interface DownloadReporter {
  onProgress(p: DownloadProgress): void;
  finish(): void;
}

export function downloadReporter(label: string, stream: NodeJS.WriteStream = process.stderr, now: () => number = Date.now): DownloadReporter {
  const started = now();
  const rate = (bytes: number) => {
    const s = (now() - started) / 1000;
    return s > 0 ? bytes / MB / s : 0;
  };
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream, format: `${label} |{bar}| {percentage}% {doneMb}/{totalMb} MB {speed} MB/s ETA {eta_formatted}`, hideCursor: true, etaBuffer: 50 },
      cliProgress.Presets.shades_classic,
    );
    let started_ = false;
    return {
      onProgress(p) {
        const fields = { doneMb: (p.bytesDone / MB).toFixed(1), totalMb: p.bytesTotal ? (p.bytesTotal / MB).toFixed(1) : "?", speed: rate(p.bytesDone - p.resumedFrom).toFixed(1) };
        if (!started_) {
          bar.start(p.bytesTotal ?? p.bytesDone, p.bytesDone, fields);
          started_ = true;
        } else bar.update(p.bytesDone, fields);
      },
      finish() {
        if (started_) bar.stop();
      },
    };
  }
  let lastPct = -100;
  let lastAt = 0;
  return {
    onProgress(p) {
      const pct = p.bytesTotal ? Math.floor((100 * p.bytesDone) / p.bytesTotal) : 0;
      const t = now();
      if (pct - lastPct < 10 || t - lastAt < 2000) return;
      lastPct = pct;
      lastAt = t;
      const speed = rate(p.bytesDone - p.resumedFrom);
      const eta = p.bytesTotal && speed > 0 ? `, ETA ${Math.round((p.bytesTotal - p.bytesDone) / MB / speed)} s` : "";
      stream.write(`${label}: ${p.bytesTotal ? `${pct}% ` : ""}${(p.bytesDone / MB).toFixed(1)}${p.bytesTotal ? `/${(p.bytesTotal / MB).toFixed(1)}` : ""} MB, ${speed.toFixed(1)} MB/s${eta}\n`);
    },
    finish() {},
  };
}
