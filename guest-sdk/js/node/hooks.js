// Module resolution hooks for ./register.js.

const root = new URL("../", import.meta.url);
const log = new URL("./log.js", import.meta.url).href;
const keys = new URL("./keys.js", import.meta.url).href;
const host = new URL("./host.js", import.meta.url).href;
const HOST_IMPORTS = ["cairn:job/timers@", "cairn:job/outputs@", "cairn:job/metrics@"];

export async function resolve(specifier, context, nextResolve) {
  if (specifier === "cairn-sdk") return { url: new URL("src/index.js", root).href, shortCircuit: true };
  if (specifier.startsWith("cairn-sdk/")) {
    return { url: new URL(specifier.slice("cairn-sdk/".length), root).href, shortCircuit: true };
  }
  if (specifier.startsWith("cairn:job/log@")) return { url: log, shortCircuit: true };
  if (specifier.startsWith("cairn:job/keys@")) return { url: keys, shortCircuit: true };
  if (HOST_IMPORTS.some((prefix) => specifier.startsWith(prefix))) return { url: host, shortCircuit: true };
  return nextResolve(specifier, context);
}
