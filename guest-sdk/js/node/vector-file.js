// The golden vector files' shared syntax (wit/vectors/README.md): items from `vector NAME` or
// `malformed NAME` to `end`, one directive a line, `#` comments. Each test reads its own
// directives into the items.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";

/**
 * The items of the vector file at `url`. `start(name, malformed)` makes an item; `directive(
 * item, name, tokens)` reads one of its lines, returning false for a directive it does not know.
 * @template T
 * @param {URL} url
 * @param {(name: string, malformed: boolean) => T} start
 * @param {(item: T, name: string, tokens: string[]) => boolean} directive
 * @returns {T[]}
 */
export function readVectorFile(url, start, directive) {
  const items = [];
  let current = null;
  for (const line of readFileSync(url, "ascii").split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [name, ...rest] = line.split(" ");
    if (name === "vector" || name === "malformed") {
      assert.equal(current, null, `${line}: the previous vector has no end`);
      current = start(rest.join(" "), name === "malformed");
    } else if (name === "end") {
      items.push(current);
      current = null;
    } else if (!directive(current, name, rest)) {
      assert.fail(`unknown line ${line}`);
    }
  }
  assert.equal(current, null, "the last vector has no end");
  return items;
}
