// Model load progress for people: a bar (cli-progress: MB, MB/s, ETA) when the stream is a
// terminal, else log lines with MB/s at most every 10% (and not more often than every 2 s); both
// end with the load time. The engine reports the bytes of weights read into place, which is where
// a load spends its time (reading the file from an SD card).
import { statSync } from "node:fs";
import { basename } from "node:path";

import cliProgress from "cli-progress";

import { NativeModel } from "./model.js";

const MB = 1024 * 1024;

export interface LoadReporter {
  progress(bytesDone: number, bytesTotal: number): void;
  /** The load ended (ok or not); a successful one is summed up with its time and rate. */
  done(ok: boolean): void;
}

export type LogFn = (fields: Record<string, unknown>, message: string) => void;

function mb(bytes: number): number {
  return Math.round((bytes / MB) * 10) / 10;
}

/** A cli-progress bar on `stream` (a TTY), then one summary line. */
export function barReporter(label: string, stream: NodeJS.WriteStream): LoadReporter {
  const started = Date.now();
  let last = 0;
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `loading ${label} |{bar}| {percentage}% {doneMb}/{totalMb} MB {speed} MB/s ETA {eta}s`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let running = false;
  return {
    progress(done, total) {
      const s = (Date.now() - started) / 1000;
      const fields = { doneMb: mb(done).toFixed(1), totalMb: mb(total).toFixed(1), speed: s > 0 ? (done / MB / s).toFixed(0) : "-" };
      if (!running) {
        bar.start(total, done, fields);
        running = true;
      } else bar.update(done, fields);
      last = done;
    },
    done(ok) {
      if (running) bar.stop();
      const s = (Date.now() - started) / 1000;
      if (ok) stream.write(`loaded ${label}: ${mb(last)} MB of weights in ${s.toFixed(2)} s (${s > 0 ? (last / MB / s).toFixed(0) : "-"} MB/s)\n`);
    },
  };
}

/** Log lines through `log` (pino-shaped: fields, message). */
export function logReporter(label: string, log: LogFn, now: () => number = Date.now): LoadReporter {
  const started = now();
  let lastPct = 0;
  let lastAt = started;
  let last = 0;
  const rate = (bytes: number, t: number) => (t > started ? Math.round(bytes / MB / ((t - started) / 1000)) : null);
  return {
    progress(done, total) {
      last = done;
      const t = now();
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      if (done >= total || pct - lastPct < 10 || t - lastAt < 2000) return;
      lastPct = pct;
      lastAt = t;
      log({ model: label, percent: pct, done_mb: mb(done), total_mb: mb(total), mb_per_s: rate(done, t) }, "model load progress");
    },
    done(ok) {
      if (!ok) return;
      const t = now();
      log({ model: label, weights_mb: mb(last), load_ms: t - started, mb_per_s: rate(last, t) }, "model weights read");
    },
  };
}

/** Plain text lines on a non-TTY stream (the CLI's stderr when piped). */
export function lineReporter(label: string, stream: NodeJS.WriteStream): LoadReporter {
  return logReporter(label, (f, message) => {
    const what = message === "model weights read"
      ? `loaded ${label}: ${f.weights_mb} MB of weights in ${((f.load_ms as number) / 1000).toFixed(2)} s (${f.mb_per_s ?? "-"} MB/s)`
      : `loading ${label}: ${f.percent}% (${f.done_mb}/${f.total_mb} MB, ${f.mb_per_s} MB/s)`;
    stream.write(what + "\n");
  });
}

/** The reporter for a CLI command: a bar on a terminal, lines otherwise. */
export function cliReporter(path: string, stream: NodeJS.WriteStream = process.stderr): LoadReporter {
  return stream.isTTY ? barReporter(basename(path), stream) : lineReporter(basename(path), stream);
}

/** NativeModel.load with `reporter` told of the progress and the end. */
export async function loadModelReporting(path: string, reporter: LoadReporter): Promise<NativeModel> {
  statSync(path); // a missing file fails here, before any bar is drawn
  // Progress calls reach the JS thread in order, but the last may arrive after the load settles:
  // the end is reported here, and later calls are dropped.
  let settled = false;
  let total = 0;
  try {
    const model = await NativeModel.load(path, (d, t) => {
      total = t;
      if (!settled) reporter.progress(d, t);
    });
    settled = true;
    const bytes = total > 0 ? total : model.info.weightBytes;
    reporter.progress(bytes, bytes);
    reporter.done(true);
    return model;
  } catch (e) {
    settled = true;
    reporter.done(false);
    throw e;
  }
}
