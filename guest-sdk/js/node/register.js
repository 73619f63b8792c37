// Runs job modules in Node.js, for unit tests: `node --import <this file> --test`.
//
// Resolves `cairn-sdk` to this SDK, the component's `cairn:job/log` import to a stand-in
// (./log.js) that keeps the messages, `cairn:job/keys` to one that hashes keys into key
// groups (./keys.js), `cairn:job/timers`, `outputs` and `metrics` to the test host of a
// `Harness` (./host.js, ./harness.js), and adds what QuickJS has and older Node.js lacks
// (Uint8Array base64). Operators then run as in the component, minus the sandbox: call
// `job.describe(args)` and `job.open(ctx, name)` on the module's `job` export, and
// `process(input, batch, keyGroups)` etc. on the operator it returns (see ./harness.js).

import { register } from "node:module";

if (typeof Uint8Array.fromBase64 !== "function") {
  Uint8Array.fromBase64 = (text) => new Uint8Array(Buffer.from(text, "base64"));
}
if (typeof Uint8Array.prototype.toBase64 !== "function") {
  Uint8Array.prototype.toBase64 = function toBase64() {
    return Buffer.from(this.buffer, this.byteOffset, this.byteLength).toString("base64");
  };
}

register("./hooks.js", import.meta.url);
