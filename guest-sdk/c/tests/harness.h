/*
 * harness.h: the C SDK's native test harness, shared by the C and Zig SDKs' tests (the Zig
 * SDK is a layer over the C one). Not part of the SDK.
 *
 * It reads the golden vectors (wit/vectors/packed-batch.txt and keyed-chunk.txt, format in
 * wit/vectors/README.md) and drives the SDK's WIT exports (`open`, `process`, `snapshot`,
 * `restore-keyed`, `restore`) as the host does, on the machine's own compiler: cairn.c and the generated bindings (cairn_job.c) are
 * compiled natively, with the bindings' `[resource-new]operator` replaced by harness.c's
 * (the generated one keeps a pointer in 32 bits, as on wasm32) — compile cairn_job.c with
 * -Dexports_cairn_job_job_operator_new=cairn_test_unused_operator_new.
 */
#ifndef CAIRN_TEST_HARNESS_H
#define CAIRN_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A packed batch: what the host hands `process` and gets back. */
typedef struct cairn_test_batch {
    uint8_t *data;
    size_t data_len;
    uint32_t *offsets;
    size_t offsets_len;
    int64_t *timestamps;
    size_t timestamps_len;
} cairn_test_batch_t;

/* One record of a vector. */
typedef struct cairn_test_record {
    bool has_key;
    uint8_t *key;
    size_t key_len;
    uint8_t *value;
    size_t value_len;
    bool has_timestamp;
    int64_t timestamp;
} cairn_test_record_t;

/* Bytes, as a WIT list<u8>. */
typedef struct cairn_test_bytes {
    uint8_t *ptr;
    size_t len;
} cairn_test_bytes_t;

/* One entry of a keyed-chunk vector. */
typedef struct cairn_test_entry {
    cairn_test_bytes_t key;
    bool tombstone;
    cairn_test_bytes_t value;
} cairn_test_entry_t;

/* A vector: records and their encoding (packed-batch.txt), or entries and their chunk
 * (keyed-chunk.txt); or (malformed) an encoding to refuse. */
typedef struct cairn_test_vector {
    char *name;
    bool malformed;
    cairn_test_record_t *records;
    size_t records_len;
    cairn_test_batch_t encoded;
    cairn_test_entry_t *entries;
    size_t entries_len;
    cairn_test_bytes_t chunk;
} cairn_test_vector_t;

/* Reads the vectors file at `path` into `*vectors`; returns how many there are. Exits with
 * a message when it cannot. */
size_t cairn_test_read_vectors(const char *path, cairn_test_vector_t **vectors);

/* Frees what cairn_test_read_vectors read. */
void cairn_test_free_vectors(cairn_test_vector_t *vectors, size_t count);

/* Whether `batch` is `expected`, byte for byte; prints the first difference, prefixed with
 * `what`, when not. */
bool cairn_test_same_batch(const char *what, const cairn_test_batch_t *batch,
                           const cairn_test_batch_t *expected);

/* The max-parallelism of the jobs the harness runs: key groups 0 to 7. */
#define CAIRN_TEST_MAX_PARALLELISM 8

/* The key group of `key`, as the harness's `keys.key-group` import and `process` by key give
 * it: a stand-in for the host's xxh3-64, consistent within the tests. */
uint16_t cairn_test_key_group(const uint8_t *key, size_t len);

/* Opens operator `name` of the job linked in (`cairn_job`), as the host's `open` does, as
 * the subtask owning key groups `first` to `last`: returns the instance, or NULL with
 * `*error` set (free it). */
void *cairn_test_open_subtask(const char *name, uint32_t first, uint32_t last, char **error);

/* The same, owning every key group. */
void *cairn_test_open(const char *name, char **error);

/* The same, its node's options `options`: `n` key, value pairs. */
void *cairn_test_open_with_options(const char *name, const char *const *options, size_t n,
                                   char **error);

/* Calls `process` on the instance with a copy of `batch` (the export owns its arguments),
 * with each record's key group when `by_key`: true with the batch it returned in `*out`
 * (free it with cairn_test_batch_free), or false with `*error` set (free it). */
bool cairn_test_process(void *instance, uint32_t input, const cairn_test_batch_t *batch,
                        bool by_key, cairn_test_batch_t *out, char **error);

/* A snapshot, as the WIT `snapshot` record. */
typedef struct cairn_test_chunk {
    uint16_t key_group;
    cairn_test_bytes_t entries;
} cairn_test_chunk_t;

typedef struct cairn_test_snapshot {
    uint32_t version;
    cairn_test_bytes_t *items;
    size_t items_len;
    /* 0: split, 1: union. */
    uint8_t mode;
    cairn_test_chunk_t *chunks;
    size_t chunks_len;
    /* The WIT value-encoding's index (cairn_value_encoding_t). */
    uint8_t value_encoding;
} cairn_test_snapshot_t;

/* Calls `snapshot`: true with it in `*out` (free it with cairn_test_snapshot_free), or false
 * with `*error` set. */
bool cairn_test_snapshot(void *instance, cairn_test_snapshot_t *out, char **error);

void cairn_test_snapshot_free(cairn_test_snapshot_t *snapshot);

/* Calls `restore-keyed` with copies of `chunks`. */
bool cairn_test_restore_keyed(void *instance, uint32_t version, const cairn_test_chunk_t *chunks,
                              size_t len, char **error);

/* Calls `restore` with copies of `items`. */
bool cairn_test_restore(void *instance, uint32_t version, const cairn_test_bytes_t *items,
                        size_t len, char **error);

/* Processes records `keys[i]` -> `value` (NULL: empty) as cairn_test_process does; returns
 * the values emitted, comma-separated, or "error: MESSAGE" (valid until the next call). */
const char *cairn_test_process_keys(void *instance, uint32_t input, bool by_key,
                                    const char *const *keys, size_t n, const char *value);

/* `restore-keyed` with `chunks`, then `restore` with `items`: returns "", or "error: MESSAGE"
 * (valid until the next call). */
const char *cairn_test_restore_all(void *instance, uint32_t version,
                                   const cairn_test_chunk_t *chunks, size_t chunks_len,
                                   const cairn_test_bytes_t *items, size_t items_len);

/* The host's timers, clocks and counters, as the harness keeps them for the instances it
 * drives (one host for all, as for one subtask): */

/* Processes records `keys[i]` (empty values) at `timestamps[i]` on by-key input 0; returns
 * what was emitted as `value@timestamp` (`value` alone for a record without one),
 * comma-separated, or "error: MESSAGE" (valid until the next call). */
const char *cairn_test_process_stamped(void *instance, const char *const *keys,
                                       const int64_t *timestamps, size_t n);

/* Moves the clock of `domain` (0: event time, the watermark; 1: processing time) to `time`
 * and fires the timers due, in order, as `on-timer` calls: returns what they emitted, as
 * cairn_test_process_stamped does. */
const char *cairn_test_advance(void *instance, int domain, int64_t time);

/* The end of input: the watermark to its end (firing every event-time timer), then
 * `finish`; returns what they emitted, as cairn_test_process_stamped does. */
const char *cairn_test_end_of_input(void *instance);

/* The number of timers registered and not fired or deleted. */
size_t cairn_test_timers(void);

/* The value of counter `name` (0 if never added to). */
uint64_t cairn_test_counter(const char *name);

/* What was sent to side output `name`: `key:value@timestamp` (`@timestamp` only for a
 * record that has one), comma-separated; "" if nothing. */
const char *cairn_test_side_output(const char *name);

/* Forgets every timer, counter and side output record and resets the clocks (watermark
 * INT64_MIN, processing time 0). */
void cairn_test_reset_host(void);

/* Drops the instance, as the host does when it goes away. */
void cairn_test_close(void *instance);

void cairn_test_batch_free(cairn_test_batch_t *batch);

#endif /* CAIRN_TEST_HARNESS_H */
