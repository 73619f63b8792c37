// Logging into the host's log, through the `cairn:job/log` import: the host tags every
// message with the subtask that wrote it.

import { log as hostLog } from "cairn:job/log@0.4.0";

/**
 * Severity of a log record.
 * @typedef {"trace" | "debug" | "info" | "warn" | "error"} Level
 */

/**
 * Writes one log record.
 * @param {Level} level
 * @param {...unknown} message Joined with spaces, as `console.log` does.
 */
export function log(level, ...message) {
  hostLog(level, format(message));
}

/** @param {...unknown} message */
export const trace = (...message) => hostLog("trace", format(message));
/** @param {...unknown} message */
export const debug = (...message) => hostLog("debug", format(message));
/** @param {...unknown} message */
export const info = (...message) => hostLog("info", format(message));
/** @param {...unknown} message */
export const warn = (...message) => hostLog("warn", format(message));
/** @param {...unknown} message */
export const error = (...message) => hostLog("error", format(message));

function format(parts) {
  if (parts.length === 1 && typeof parts[0] === "string") return parts[0];
  return parts.map(show).join(" ");
}

function show(x) {
  if (typeof x === "string") return x;
  if (x instanceof Error) return x.stack ? `${x}\n${x.stack}` : String(x);
  if (typeof x === "object" && x !== null) {
    try {
      return JSON.stringify(x);
    } catch {
      return String(x);
    }
  }
  return String(x);
}

// QuickJS has no `console`: give it one that writes to the host's log, so that code (and
// libraries) using console.log still say something.
if (typeof globalThis.console === "undefined") {
  globalThis.console = /** @type {Console} */ (/** @type {unknown} */ ({
    log: info,
    info,
    debug,
    trace,
    warn,
    error,
  }));
}
