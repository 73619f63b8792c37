/*
 * harness.h: the C SDK's native test harness, shared by the C and Zig SDKs' tests (the Zig
 * SDK is a layer over the C one). Not part of the SDK.
 *
 * It reads the packed-batch golden vectors (wit/vectors/packed-batch.txt, format in
 * wit/vectors/README.md) and drives the SDK's WIT exports (`open`, `process`) as the host
 * does, on the machine's own compiler: cairn.c and the generated bindings (cairn_job.c) are
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

/* A vector: records and their encoding, or (malformed) an encoding to refuse. */
typedef struct cairn_test_vector {
    char *name;
    bool malformed;
    cairn_test_record_t *records;
    size_t records_len;
    cairn_test_batch_t encoded;
} cairn_test_vector_t;

/* Reads the vectors file at `path` (NULL: the CAIRN_VECTORS environment variable) into
 * `*vectors`; returns how many there are. Exits with a message when it cannot. */
size_t cairn_test_read_vectors(const char *path, cairn_test_vector_t **vectors);

/* Frees what cairn_test_read_vectors read. */
void cairn_test_free_vectors(cairn_test_vector_t *vectors, size_t count);

/* Whether `batch` is `expected`, byte for byte; prints the first difference, prefixed with
 * `what`, when not. */
bool cairn_test_same_batch(const char *what, const cairn_test_batch_t *batch,
                           const cairn_test_batch_t *expected);

/* Opens operator `name` of the job linked in (`cairn_job`), as the host's `open` does:
 * returns the instance, or NULL with `*error` set (free it). */
void *cairn_test_open(const char *name, char **error);

/* Calls `process` on the instance with a copy of `batch` (the export owns its arguments):
 * true with the batch it returned in `*out` (free it with cairn_test_batch_free), or false
 * with `*error` set (free it). */
bool cairn_test_process(void *instance, uint32_t input, const cairn_test_batch_t *batch,
                        cairn_test_batch_t *out, char **error);

/* Drops the instance, as the host does when it goes away. */
void cairn_test_close(void *instance);

void cairn_test_batch_free(cairn_test_batch_t *batch);

#endif /* CAIRN_TEST_HARNESS_H */
