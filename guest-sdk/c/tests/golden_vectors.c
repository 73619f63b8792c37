/*
 * The golden vectors of the packed-batch and keyed-chunk encodings (wit/vectors, written by
 * the Rust SDK): the C SDK encodes and decodes every vector exactly as the reference does,
 * and refuses every malformed encoding. Built natively with harness.c; `cargo xtask sdk-test
 * --lang c` runs it as
 *
 *     golden_vectors wit/vectors/packed-batch.txt wit/vectors/keyed-chunk.txt
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "harness.h"

static int passed, failed;

static void check(bool ok, const char *what, const char *name) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("not ok - %s: %s\n", name, what);
    }
}

/* What the `copy` operator was handed, record by record (keys and values copied: a record
 * is borrowed for the call). */
static cairn_record_t seen[1024];
static size_t seen_len;

static cairn_bytes_t copy_bytes(cairn_bytes_t bytes) {
    uint8_t *copy = malloc(bytes.len ? bytes.len : 1);
    if (copy == NULL) abort();
    if (bytes.len) memcpy(copy, bytes.ptr, bytes.len);
    return (cairn_bytes_t){copy, bytes.len};
}

static void forget_seen(void) {
    for (size_t i = 0; i < seen_len; i++) {
        free((void *)seen[i].key.ptr);
        free((void *)seen[i].value.ptr);
    }
    seen_len = 0;
}

/* Passes every record on as it is, and keeps what it saw. */
static int copy_process(void *self, const cairn_record_t *record, cairn_emitter_t *out) {
    (void)self;
    if (seen_len == sizeof seen / sizeof *seen) return cairn_error("too many records");
    cairn_record_t *kept = &seen[seen_len++];
    *kept = *record;
    kept->key = copy_bytes(record->key);
    kept->value = copy_bytes(record->value);
    cairn_emit_record(out, record);
    return CAIRN_OK;
}

static const cairn_operator_t COPY = {.name = "copy", .process = copy_process};

static int describe(const cairn_args_t *args, cairn_graph_t *graph) {
    (void)args;
    (void)graph;
    return cairn_error("the tests call no describe");
}

CAIRN_JOB(describe, &COPY);

static cairn_test_batch_t emitted(const cairn_emitter_t *out) {
    return (cairn_test_batch_t){out->data.ptr, out->data.len, out->offsets, out->offsets_len,
                                out->timestamps, out->timestamps_len};
}

static void emitter_free(cairn_emitter_t *out) {
    cairn_buffer_free(&out->data);
    free(out->offsets);
    free(out->timestamps);
    *out = (cairn_emitter_t){0};
}

static bool same_bytes(cairn_bytes_t got, const uint8_t *expected, size_t len) {
    return got.len == len && (len == 0 || memcmp(got.ptr, expected, len) == 0);
}

static void check_vector(const cairn_test_vector_t *v, void *copy) {
    /* Encoding, whole records and piece by piece. */
    cairn_emitter_t out = {0}, pieces = {0};
    for (size_t i = 0; i < v->records_len; i++) {
        const cairn_test_record_t *r = &v->records[i];
        if (r->has_timestamp)
            cairn_emit_with_timestamp(&out, r->key, r->key_len, r->value, r->value_len,
                                      r->timestamp);
        else if (r->has_key)
            cairn_emit_keyed(&out, r->key, r->key_len, r->value, r->value_len);
        else
            cairn_emit(&out, r->value, r->value_len);
        cairn_emit_begin(&pieces, r->has_key ? r->key : NULL, r->key_len);
        for (size_t j = 0; j < r->value_len; j++) cairn_emit_byte(&pieces, r->value[j]);
        if (r->has_timestamp)
            cairn_emit_end_with_timestamp(&pieces, r->timestamp);
        else
            cairn_emit_end(&pieces);
    }
    cairn_test_batch_t batch = emitted(&out);
    check(cairn_emit_count(&out) == v->records_len, "cairn_emit_count", v->name);
    check(cairn_test_same_batch(v->name, &batch, &v->encoded), "encoding gives the reference",
          v->name);
    batch = emitted(&pieces);
    check(cairn_test_same_batch(v->name, &batch, &v->encoded),
          "encoding piece by piece gives the reference", v->name);
    emitter_free(&out);
    emitter_free(&pieces);

    /* Decoding, through the process export; the copy comes back as the same batch. */
    cairn_test_batch_t returned;
    char *error = NULL;
    if (!cairn_test_process(copy, 2, &v->encoded, false, &returned, &error)) {
        printf("    process: %s\n", error);
        free(error);
        forget_seen();
        check(false, "process accepts the vector", v->name);
        return;
    }
    bool records_match = seen_len == v->records_len;
    for (size_t i = 0; records_match && i < seen_len; i++) {
        const cairn_test_record_t *r = &v->records[i];
        const cairn_record_t *got = &seen[i];
        /* The encoding does not tell an empty key from none: both read back empty. */
        records_match = got->input == 2 && same_bytes(got->key, r->key, r->key_len) &&
                        same_bytes(got->value, r->value, r->value_len) &&
                        got->has_timestamp == r->has_timestamp &&
                        (!r->has_timestamp || got->timestamp == r->timestamp);
        if (!records_match) printf("    record %zu differs\n", i);
    }
    check(records_match, "decoding gives the records", v->name);
    check(cairn_test_same_batch(v->name, &returned, &v->encoded),
          "passing records on gives the same batch", v->name);
    cairn_test_batch_free(&returned);
    forget_seen();
}

static void check_malformed(const cairn_test_vector_t *v, void *copy) {
    cairn_test_batch_t returned;
    char *error = NULL;
    if (cairn_test_process(copy, 0, &v->encoded, false, &returned, &error)) {
        cairn_test_batch_free(&returned);
        check(false, "process refuses it", v->name);
        return;
    }
    check(strstr(error, "malformed batch") != NULL && seen_len == 0,
          "process refuses it before any record", v->name);
    free(error);
    forget_seen();
}

static bool same(cairn_bytes_t got, cairn_test_bytes_t expected) {
    return same_bytes(got, expected.ptr, expected.len);
}

static void check_chunk_vector(const cairn_test_vector_t *v, void *unused) {
    (void)unused;
    cairn_buffer_t chunk = {0};
    for (size_t i = 0; i < v->entries_len; i++) {
        const cairn_test_entry_t *e = &v->entries[i];
        if (e->tombstone)
            cairn_chunk_put_tombstone(&chunk, e->key.ptr, e->key.len);
        else
            cairn_chunk_put(&chunk, e->key.ptr, e->key.len, e->value.ptr, e->value.len);
    }
    check(same((cairn_bytes_t){chunk.ptr, chunk.len}, v->chunk), "encoding gives the reference",
          v->name);
    cairn_buffer_free(&chunk);

    cairn_bytes_t entries = {v->chunk.ptr, v->chunk.len};
    size_t pos = 0, n = 0;
    cairn_chunk_entry_t got;
    bool match = true;
    int more;
    while ((more = cairn_chunk_next(entries, &pos, &got)) == 1) {
        const cairn_test_entry_t *e = n < v->entries_len ? &v->entries[n] : NULL;
        match = match && e && same(got.key, e->key) && got.tombstone == e->tombstone &&
                (e->tombstone || same(got.value, e->value));
        n++;
    }
    check(more == 0 && match && n == v->entries_len, "decoding gives the entries", v->name);
}

static void check_chunk_malformed(const cairn_test_vector_t *v, void *unused) {
    (void)unused;
    cairn_bytes_t entries = {v->chunk.ptr, v->chunk.len};
    size_t pos = 0;
    cairn_chunk_entry_t entry;
    int more;
    while ((more = cairn_chunk_next(entries, &pos, &entry)) == 1) continue;
    check(more == CAIRN_ERROR, "decoding refuses it", v->name);
}

/* Checks every vector of `path` with `valid` or `malformed`; counts each kind. */
static void check_file(const char *path, void (*valid)(const cairn_test_vector_t *, void *),
                       void (*malformed)(const cairn_test_vector_t *, void *), void *arg,
                       size_t *valid_count, size_t *malformed_count) {
    cairn_test_vector_t *vectors;
    size_t n = cairn_test_read_vectors(path, &vectors);
    *valid_count = *malformed_count = 0;
    for (size_t i = 0; i < n; i++) {
        if (vectors[i].malformed) {
            malformed(&vectors[i], arg);
            ++*malformed_count;
        } else {
            valid(&vectors[i], arg);
            ++*valid_count;
        }
    }
    cairn_test_free_vectors(vectors, n);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: golden_vectors packed-batch.txt keyed-chunk.txt\n");
        return 2;
    }
    char *error = NULL;
    void *copy = cairn_test_open("copy", &error);
    if (copy == NULL) {
        printf("cannot open the copy operator: %s\n", error);
        return 1;
    }
    size_t batches, bad_batches, chunks, bad_chunks;
    check_file(argv[1], check_vector, check_malformed, copy, &batches, &bad_batches);
    check(batches >= 10 && bad_batches >= 5, "the file has vectors", "packed-batch.txt");
    check_file(argv[2], check_chunk_vector, check_chunk_malformed, NULL, &chunks, &bad_chunks);
    check(chunks >= 5 && bad_chunks >= 5, "the file has vectors", "keyed-chunk.txt");
    cairn_test_close(copy);
    printf("C SDK, %zu packed batches and %zu malformed ones, %zu keyed chunks and %zu "
           "malformed ones:\n",
           batches, bad_batches, chunks, bad_chunks);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
