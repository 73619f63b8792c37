// Stands in for the component's `cairn:job/log` import under Node.js: keeps every message
// (`messages`, as [level, text]) and writes them to standard error when CAIRN_LOG is set.

/** @type {[string, string][]} */
export const messages = [];

/**
 * @param {string} level
 * @param {string} message
 */
export function log(level, message) {
  messages.push([level, message]);
  if (process.env.CAIRN_LOG) process.stderr.write(`[${level}] ${message}\n`);
}
