#!/usr/bin/env node
// Builds a Cairn job component from a JavaScript job module:
//
//   node guest-sdk/js/build.js JOB.js -o JOB.wasm [--wit DIR]
//
// 1. Bundles JOB.js and what it imports into one ES module with rolldown, resolving
//    `cairn-sdk` to this SDK. The `cairn:job/*` imports stay imports: they are the
//    component's.
// 2. Turns the bundle into a component of the `cairn-job` world with componentize-qjs, the
//    QuickJS backend of jco (what `jco componentize --backend quickjs
//    --backend-qjs-disable-async` runs): QuickJS compiled to WebAssembly with the job's
//    code evaluated at build time (Wizer), in the synchronous ABI that Cairn calls.

import { mkdir, writeFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const sdk = dirname(fileURLToPath(import.meta.url));
const usage = "usage: node build.js JOB.js -o JOB.wasm [--wit DIR] [--stub-wasi] [--keep-bundle PATH]";

/**
 * Builds the component for job module `entry`.
 * @param {object} options
 * @param {string} options.entry The job's entry module (it exports `job`).
 * @param {string} options.out Where the component goes.
 * @param {string} [options.wit] The WIT folder with the `cairn-job` world (default: the
 *   repository's `wit/`).
 * @param {boolean} [options.stubWasi] Replace every WASI import with a trap, so that the
 *   component imports nothing but `cairn:job/log` (then `Date.now()` and `Math.random()`
 *   trap too).
 * @param {string} [options.keepBundle] Also write the bundled JavaScript here.
 * @returns {Promise<number>} The component's size in bytes.
 */
export async function build({ entry, out, wit = resolve(sdk, "../../wit"), stubWasi = false, keepBundle }) {
  const { rolldown } = await import("rolldown");
  const { componentize } = await import("componentize-qjs");
  const bundle = await rolldown({
    input: resolve(entry),
    external: [/^cairn:/, /^wasi:/],
    resolve: { alias: { "cairn-sdk": resolve(sdk, "src/index.js") } },
    platform: "neutral",
    logLevel: "warn",
  });
  const { output } = await bundle.generate({ format: "esm", comments: { legal: false, annotation: false } });
  await bundle.close();
  const source = output[0].code;
  if (keepBundle) await writeFile(keepBundle, source);
  const { component } = await componentize({
    witPath: resolve(wit),
    world: "cairn-job",
    jsSource: source,
    // Cairn calls jobs synchronously: no component-model async ABI.
    sync: true,
    stubWasi,
  });
  await mkdir(dirname(resolve(out)), { recursive: true });
  await writeFile(out, component);
  return component.length;
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
      stubWasi: values["stub-wasi"],
      keepBundle: values["keep-bundle"],
    });
    console.error(`${values.out}: ${(size / 1e6).toFixed(2)} MB`);
  } catch (e) {
    console.error(`cannot build ${positionals[0]}: ${e?.message ?? e}`);
    process.exit(1);
  }
}
