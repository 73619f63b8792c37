#!/usr/bin/env node
// Builds a Cairn job component from a JavaScript job module:
//
//   node guest-sdk/js/build.js JOB.js -o JOB.wasm [--wit DIR] [--opt-size] [--stub-wasi]
//
// 1. Bundles JOB.js and what it imports into one ES module with rolldown, resolving
//    `cairn-sdk` to this SDK. The `cairn:job/*` imports stay imports: they are the
//    component's.
// 2. Turns the bundle into a component of the `cairn-job` world with componentize-qjs, the
//    QuickJS backend of jco (what `jco componentize --backend quickjs
//    --backend-qjs-disable-async` runs): QuickJS compiled to WebAssembly with the job's
//    code evaluated at build time (Wizer), in the synchronous ABI that Cairn calls.
//
// A table from the bundle's lines back to the modules' lines goes into the bundle too, so
// that errors name `job.js:42` (see sourceLines).

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const sdk = dirname(fileURLToPath(import.meta.url));
const usage = "usage: node build.js JOB.js -o JOB.wasm [--wit DIR] [--opt-size] [--stub-wasi] [--keep-bundle PATH]";

/**
 * Builds the component for job module `entry`.
 * @param {object} options
 * @param {string} options.entry The job's entry module (it exports `job`).
 * @param {string} options.out Where the component goes.
 * @param {string} [options.wit] The WIT folder with the `cairn-job` world (default: the
 *   repository's `wit/`, the `cairn:job@0.4.0` this SDK builds against).
 * @param {boolean} [options.optSize] Use QuickJS built for size: ~0.5 MB smaller, ~1.6x slower.
 * @param {boolean} [options.stubWasi] Replace every WASI import with a trap, so that the
 *   component imports nothing but `cairn:job/log` (then `Date.now()` and `Math.random()`
 *   trap too).
 * @param {string} [options.keepBundle] Also write the bundled JavaScript here.
 * @returns {Promise<number>} The component's size in bytes.
 */
export async function build({ entry, out, wit = resolve(sdk, "../../wit"), optSize = false, stubWasi = false, keepBundle }) {
  const { rolldown } = await import("rolldown");
  const { componentize } = await import("componentize-qjs");
  const bundle = await rolldown({
    input: resolve(entry),
    external: [/^cairn:/, /^wasi:/],
    resolve: { alias: { "cairn-sdk": resolve(sdk, "src/index.js") } },
    platform: "neutral",
    logLevel: "warn",
  });
  const { output } = await bundle.generate({
    format: "esm",
    dir: dirname(resolve(entry)),
    sourcemap: "hidden",
    comments: { legal: false, annotation: false },
  });
  await bundle.close();
  const source = output[0].code + sourceLines(output[0].map, dirname(resolve(entry)));
  if (keepBundle) await writeFile(keepBundle, source);
  const { component } = await componentize({
    witPath: resolve(wit),
    world: "cairn-job",
    jsSource: source,
    // Cairn calls jobs synchronously: no component-model async ABI.
    sync: true,
    optSize,
    stubWasi,
  });
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, component);
  return component.length;
}

/**
 * A statement for the end of the bundle that records, for each line of the bundle, the
 * module and line it came from: the SDK rewrites stack traces with it, so that an error
 * names `job.js:42` rather than a line of the bundle.
 * @param {{ sources: string[], mappings: string }} map The bundle's source map.
 * @param {string} dir The folder the map's sources are relative to.
 */
function sourceLines(map, dir) {
  const sdkSources = resolve(sdk, "src") + sep;
  const sources = map.sources.map((source) => {
    const path = resolve(dir, source);
    return path.startsWith(sdkSources) ? `cairn-sdk/${relative(sdkSources, path)}` : relative(dir, path);
  });
  // Per bundle line: "column,source,line,..." for each segment that starts another
  // original line (columns 0-based, lines 1-based), the bundle's lines joined by ";". A
  // string, not arrays: it stays one small string in the component's snapshot of the heap.
  const lines = [];
  let sourceIndex = 0;
  let originalLine = 0;
  for (const line of map.mappings.split(";")) {
    const segments = [];
    let column = 0;
    for (const segment of line.split(",")) {
      if (segment === "") continue;
      const fields = decodeVlq(segment);
      column += fields[0];
      if (fields.length < 4) continue;
      sourceIndex += fields[1];
      originalLine += fields[2];
      const n = segments.length;
      if (n === 0 || segments[n - 2] !== sourceIndex || segments[n - 1] !== originalLine + 1) {
        segments.push(column, sourceIndex, originalLine + 1);
      }
    }
    lines.push(segments.join(","));
  }
  const value = JSON.stringify({ sources: sources.join("\n"), lines: lines.join(";") });
  return `\nglobalThis[Symbol.for("cairn.sourceLines")] = ${value};\n`;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** The numbers of one source map segment (base64 VLQ). */
function decodeVlq(segment) {
  const values = [];
  let value = 0;
  let shift = 0;
  for (const char of segment) {
    const digit = BASE64.indexOf(char);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        out: { type: "string", short: "o" },
        wit: { type: "string" },
        "keep-bundle": { type: "string" },
        "stub-wasi": { type: "boolean" },
        "opt-size": { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    console.error(`${e.message}\n${usage}`);
    process.exit(2);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(usage);
    process.exit(0);
  }
  if (positionals.length !== 1 || !values.out) {
    console.error(usage);
    process.exit(2);
  }
  try {
    const size = await build({
      entry: positionals[0],
      out: values.out,
      wit: values.wit,
      optSize: values["opt-size"],
      stubWasi: values["stub-wasi"],
      keepBundle: values["keep-bundle"],
    });
    console.error(`${values.out}: ${(size / 1e6).toFixed(2)} MB`);
  } catch (e) {
    console.error(`cannot build ${positionals[0]}: ${e?.message ?? e}`);
    process.exit(1);
  }
}
