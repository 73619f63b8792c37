// Stands in for the component's `cairn:job/keys` import under Node.js. The host hashes keys
// with xxh3-64; this stand-in uses FNV-1a, which is enough for tests (the harness gives
// records key groups with the same function, so they agree), and avoids an xxh3 here. So a
// key's key group under Node.js is not the one it has in Cairn: do not write it into tests.

/** The max-parallelism the stand-in hashes for: the harness's `context()` default. */
export const MAX_PARALLELISM = 128;

/**
 * The key group of `key`, for a job of max-parallelism `MAX_PARALLELISM`.
 * @param {Uint8Array} key
 * @returns {number}
 */
export function keyGroup(key) {
  let hash = 0x811c9dc5;
  for (const byte of key) hash = Math.imul(hash ^ byte, 0x01000193) >>> 0;
  return hash % MAX_PARALLELISM;
}
