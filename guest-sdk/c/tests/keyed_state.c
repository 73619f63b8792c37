/*
 * Keyed state and the state exports: keyed state survives a snapshot and a restore, also
 * into another parallelism; operator-wide items, modes and versions; and misuse explained.
 * Built natively with harness.c; `cargo xtask sdk-test --lang c` runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "harness.h"

static int passed, failed;

static void check(bool ok, const char *what) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("not ok - %s\n", what);
    }
}

/* ---------------------------------------------------------------------------------------
 * The operators under test
 * ------------------------------------------------------------------------------------- */

/* The keyed state of the tally opened last, for the tests to look into. */
static cairn_keyed_state_t *tally_state;
static int restored_calls;

/* Counts records per key (keyed state) and in all (operator-wide state, union mode). A
 * record whose value is `del` removes its key, `put-key K` sets key K to 1. */
typedef struct tally {
    cairn_keyed_state_t *counts;
    uint64_t records;
} tally_t;

static int tally_open(void *self, const cairn_context_t *ctx) {
    tally_state = ((tally_t *)self)->counts = ctx->keyed_state;
    return CAIRN_OK;
}

static int tally_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    tally_t *t = self;
    t->records++;
    if (r->value.len == 3 && memcmp(r->value.ptr, "del", 3) == 0)
        return cairn_keyed_remove(t->counts, r);
    if (r->value.len > 8 && memcmp(r->value.ptr, "put-key ", 8) == 0) {
        uint64_t one = 1;
        return cairn_keyed_put_key(t->counts, r->value.ptr + 8, r->value.len - 8, &one);
    }
    uint64_t *n;
    if (cairn_keyed_get_or_insert(t->counts, r, (void **)&n) != CAIRN_OK) return CAIRN_ERROR;
    ++*n;
    cairn_emit_begin(out, NULL, 0);
    cairn_emit_write(out, r->key.ptr, r->key.len);
    cairn_emit_byte(out, '=');
    cairn_emit_u64(out, *n);
    cairn_emit_end(out);
    return CAIRN_OK;
}

static int tally_snapshot(void *self, cairn_buffer_t *state) {
    cairn_buffer_append_u64(state, ((tally_t *)self)->records);
    return CAIRN_OK;
}

/* Union mode: one item per old subtask, added up. */
static int tally_restore(void *self, const uint8_t *data, size_t len, uint32_t version) {
    (void)version;
    uint64_t n = 0;
    for (size_t i = 0; i < len; i++) n = n * 10 + (data[i] - '0');
    ((tally_t *)self)->records += n;
    return CAIRN_OK;
}

static int tally_restored(void *self) {
    (void)self;
    restored_calls++;
    return CAIRN_OK;
}

static const cairn_operator_t TALLY = {
    .name = "tally",
    .size = sizeof(tally_t),
    .state_version = 5,
    .keyed_values = &cairn_codec_u64,
    .operator_state_mode = CAIRN_STATE_UNION,
    .open = tally_open,
    .process = tally_process,
    .snapshot = tally_snapshot,
    .restore = tally_restore,
    .restored = tally_restored,
};

/* Appends each record's value to its key's bytes, and emits them. */
typedef struct notes {
    cairn_keyed_state_t *notes;
} notes_t;

static int notes_open(void *self, const cairn_context_t *ctx) {
    ((notes_t *)self)->notes = ctx->keyed_state;
    return CAIRN_OK;
}

static int notes_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    cairn_buffer_t *text;
    if (cairn_keyed_get_or_insert(((notes_t *)self)->notes, r, (void **)&text) != CAIRN_OK)
        return CAIRN_ERROR;
    cairn_buffer_append(text, r->value.ptr, r->value.len);
    cairn_emit(out, text->ptr, text->len);
    return CAIRN_OK;
}

static const cairn_operator_t NOTES = {
    .name = "notes",
    .size = sizeof(notes_t),
    .keyed_values = &cairn_codec_utf8,
    .open = notes_open,
    .process = notes_process,
};

/* No state at all. */
static int plain_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    (void)self;
    cairn_emit_record(out, r);
    return CAIRN_OK;
}

static const cairn_operator_t PLAIN = {.name = "plain", .process = plain_process};

static int describe(const cairn_args_t *args, cairn_graph_t *graph) {
    (void)args;
    (void)graph;
    return cairn_error("the tests call no describe");
}

CAIRN_JOB(describe, &TALLY, &NOTES, &PLAIN);

/* ---------------------------------------------------------------------------------------
 * Helpers
 * ------------------------------------------------------------------------------------- */

static void *open_subtask(const char *name, uint32_t first, uint32_t last) {
    char *error = NULL;
    void *instance = cairn_test_open_subtask(name, first, last, &error);
    if (instance == NULL) {
        printf("cannot open %s: %s\n", name, error);
        exit(1);
    }
    return instance;
}

static void *open_all(const char *name) {
    return open_subtask(name, 0, CAIRN_TEST_MAX_PARALLELISM - 1);
}

static const char *by_key(void *instance, const char *const *keys, size_t n) {
    return cairn_test_process_keys(instance, 0, true, keys, n, NULL);
}

static void expect(const char *got, const char *expected, const char *what) {
    bool ok = strcmp(got, expected) == 0;
    if (!ok) printf("    %s:\n      got      %s\n      expected %s\n", what, got, expected);
    check(ok, what);
}

/* `got` is an error containing `part`. */
static void expect_error(const char *got, const char *part, const char *what) {
    bool ok = strncmp(got, "error: ", 7) == 0 && strstr(got, part) != NULL;
    if (!ok) printf("    %s: got %s\n", what, got);
    check(ok, what);
}

static cairn_test_snapshot_t snapshot(void *instance) {
    cairn_test_snapshot_t s;
    char *error = NULL;
    if (!cairn_test_snapshot(instance, &s, &error)) {
        printf("snapshot failed: %s\n", error);
        exit(1);
    }
    return s;
}

static cairn_record_t keyed_record(const char *key) {
    size_t len = strlen(key);
    return (cairn_record_t){.key = {(const uint8_t *)key, len},
                            .has_key_group = true,
                            .key_group = cairn_test_key_group((const uint8_t *)key, len)};
}

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------- */

static void keyed_state_survives_snapshot_and_restore(void) {
    void *first = open_all("tally");
    const char *keys[] = {"a", "b", "a", "c", "a"};
    expect(by_key(first, keys, 5), "a=1,b=1,a=2,c=1,a=3", "counts per key");
    cairn_test_snapshot_t s = snapshot(first);
    check(s.version == 5 && s.mode == 1 && s.value_encoding == CAIRN_ENCODING_U64_LE,
          "the snapshot has the version, mode and value encoding");
    check(s.items_len == 1 && s.items[0].len == 1 && s.items[0].ptr[0] == '5',
          "the operator-wide state is one item");
    /* One chunk per key group with keys, each key once, values u64 LE. */
    size_t entries = 0;
    bool groups_once = true, values_ok = true;
    for (size_t i = 0; i < s.chunks_len; i++) {
        for (size_t j = 0; j < i; j++)
            groups_once &= s.chunks[j].key_group != s.chunks[i].key_group;
        size_t pos = 0;
        cairn_chunk_entry_t e;
        while (cairn_chunk_next((cairn_bytes_t){s.chunks[i].entries.ptr, s.chunks[i].entries.len},
                                &pos, &e) == 1) {
            entries++;
            values_ok &= e.value.len == 8 &&
                         cairn_test_key_group(e.key.ptr, e.key.len) == s.chunks[i].key_group;
        }
    }
    check(entries == 3 && groups_once && values_ok, "a chunk per key group, each key once");
    cairn_test_close(first);

    restored_calls = 0;
    void *second = open_all("tally");
    expect(cairn_test_restore_all(second, s.version, s.chunks, s.chunks_len, s.items,
                                  s.items_len),
           "", "the restore is accepted");
    check(restored_calls == 1, "restored is called once");
    check(cairn_keyed_count(tally_state) == 3, "every key is back");
    const char *more[] = {"a", "c", "d"};
    expect(by_key(second, more, 3), "a=4,c=2,d=1", "counts go on");
    cairn_test_snapshot_t again = snapshot(second);
    check(again.items_len == 1 && again.items[0].len == 1 && again.items[0].ptr[0] == '8',
          "the operator-wide state is restored");
    cairn_test_snapshot_free(&again);
    cairn_test_snapshot_free(&s);
    cairn_test_close(second);
}

static void chunks_of_two_subtasks_restore_into_one(void) {
    enum { KEYS = 50 };
    char names[KEYS][8];
    const char *keys[2][KEYS];
    size_t count[2] = {0, 0};
    void *old[2] = {open_subtask("tally", 0, 3), open_subtask("tally", 4, 7)};
    for (int i = 0; i < KEYS; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        int owner = cairn_test_key_group((const uint8_t *)names[i], strlen(names[i])) >= 4;
        keys[owner][count[owner]++] = names[i];
    }
    check(count[0] > 0 && count[1] > 0, "both subtasks get keys");
    cairn_test_snapshot_t s[2];
    for (int i = 0; i < 2; i++) {
        by_key(old[i], keys[i], count[i]);
        by_key(old[i], keys[i], count[i]);
        s[i] = snapshot(old[i]);
        cairn_test_close(old[i]);
    }
    void *merged = open_all("tally");
    cairn_test_bytes_t items[2] = {s[0].items[0], s[1].items[0]};
    char *error = NULL;
    bool ok = cairn_test_restore_keyed(merged, 5, s[0].chunks, s[0].chunks_len, &error) &&
              cairn_test_restore_keyed(merged, 5, s[1].chunks, s[1].chunks_len, &error) &&
              cairn_test_restore(merged, 5, items, 2, &error);
    if (!ok) printf("    %s\n", error);
    check(ok, "chunks and items of two subtasks restore into one");
    check(cairn_keyed_count(tally_state) == KEYS, "every key is there");
    const char *some[] = {"k0", "k49", "k7"};
    expect(by_key(merged, some, 3), "k0=3,k49=3,k7=3", "each count goes on");
    cairn_test_snapshot_t after = snapshot(merged);
    char expected[8];
    snprintf(expected, sizeof expected, "%d", 2 * KEYS + 3);
    check(after.items_len == 1 && after.items[0].len == strlen(expected) &&
              memcmp(after.items[0].ptr, expected, after.items[0].len) == 0,
          "union items are each restored (added up)");
    cairn_test_snapshot_free(&after);
    cairn_test_snapshot_free(&s[0]);
    cairn_test_snapshot_free(&s[1]);
    cairn_test_close(merged);
}

static void the_table_grows_removes_and_iterates(void) {
    enum { KEYS = 5000 };
    void *instance = open_all("tally");
    cairn_keyed_state_t *state = tally_state;
    char key[16];
    for (uint64_t i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "key-%llu", (unsigned long long)i);
        cairn_record_t r = keyed_record(key);
        cairn_keyed_put(state, &r, &i);
    }
    for (uint64_t i = 0; i < KEYS; i += 3) {
        snprintf(key, sizeof key, "key-%llu", (unsigned long long)i);
        cairn_record_t r = keyed_record(key);
        cairn_keyed_remove(state, &r);
    }
    bool all_right = true;
    for (uint64_t i = 0; i < KEYS; i++) {
        snprintf(key, sizeof key, "key-%llu", (unsigned long long)i);
        cairn_record_t r = keyed_record(key);
        uint64_t *n;
        cairn_keyed_get(state, &r, (void **)&n);
        all_right &= i % 3 == 0 ? n == NULL : n != NULL && *n == i;
    }
    check(all_right, "get finds what put left and remove did not take");
    size_t kept = KEYS - (KEYS + 2) / 3, seen = 0;
    cairn_keyed_iter_t it = {0};
    cairn_bytes_t k;
    uint64_t *v;
    bool each_right = true;
    while (cairn_keyed_next(state, &it, &k, (void **)&v)) {
        seen++;
        int len = snprintf(key, sizeof key, "key-%llu", (unsigned long long)*v);
        each_right &= (size_t)len == k.len && memcmp(key, k.ptr, k.len) == 0;
    }
    check(cairn_keyed_count(state) == kept && seen == kept && each_right,
          "iteration visits each key once, with its value");
    cairn_test_close(instance);
}

static void byte_values_round_trip(void) {
    void *first = open_all("notes");
    const char *keys[] = {"x", "y", "x"};
    expect(cairn_test_process_keys(first, 0, true, keys, 3, "ab"), "ab,ab,abab",
           "byte values grow");
    cairn_test_snapshot_t s = snapshot(first);
    check(s.value_encoding == CAIRN_ENCODING_UTF8 && s.items_len == 0,
          "utf8 values, no operator-wide state");
    cairn_test_close(first);
    void *second = open_all("notes");
    expect(cairn_test_restore_all(second, 1, s.chunks, s.chunks_len, NULL, 0), "", "restored");
    expect(cairn_test_process_keys(second, 0, true, keys, 1, "!"), "abab!", "the bytes are back");
    cairn_test_snapshot_free(&s);
    cairn_test_close(second);
}

static void misuse_is_explained(void) {
    void *tally = open_subtask("tally", 0, 3);
    const char *a[] = {"a"};
    expect_error(cairn_test_process_keys(tally, 3, false, a, 1, NULL),
                 "keyed state needs records of a by-key input; this one arrived on input 3, "
                 "which is not partitioned by key",
                 "a record not of a by-key input");
    const char *foreign = NULL;
    char names[100][8];
    for (int i = 0; i < 100 && !foreign; i++) {
        snprintf(names[i], sizeof names[i], "k%d", i);
        if (cairn_test_key_group((const uint8_t *)names[i], strlen(names[i])) >= 4)
            foreign = names[i];
    }
    char command[32];
    snprintf(command, sizeof command, "put-key %s", foreign);
    expect_error(cairn_test_process_keys(tally, 0, false, a, 1, command),
                 "is not this subtask's (it owns key groups 0 to 3)",
                 "a key of another subtask's key group");

    cairn_test_chunk_t chunk = {0, {(uint8_t *)"\x01" "a" "\x03" "12", 5}};
    expect_error(cairn_test_restore_all(tally, 4, &chunk, 1, NULL, 0),
                 "the state is in encoding version 4, operator \"tally\" reads version 5",
                 "keyed state of another version");
    cairn_test_bytes_t item = {(uint8_t *)"1", 1};
    expect_error(cairn_test_restore_all(tally, 4, NULL, 0, &item, 1),
                 "the state is in encoding version 4, operator \"tally\" reads version 5",
                 "operator-wide state of another version");
    expect_error(cairn_test_restore_all(tally, 5, &chunk, 1, NULL, 0),
                 "a u64 state value has 2 bytes, not 8", "a value of the wrong size");
    cairn_test_chunk_t cut = {0, {(uint8_t *)"\x05" "a", 2}};
    expect_error(cairn_test_restore_all(tally, 5, &cut, 1, NULL, 0), "malformed keyed chunk",
                 "a malformed chunk");
    cairn_test_chunk_t other_group = {6, {(uint8_t *)"", 0}};
    expect_error(cairn_test_restore_all(tally, 5, &other_group, 1, NULL, 0),
                 "key group 6 is not this subtask's", "a chunk of another subtask's key group");
    cairn_test_close(tally);

    void *plain = open_all("plain");
    expect_error(cairn_test_restore_all(plain, 1, &chunk, 1, NULL, 0),
                 "the state has keyed state for operator \"plain\", which keeps none",
                 "keyed state for an operator without");
    expect_error(cairn_test_restore_all(plain, 1, NULL, 0, &item, 1),
                 "keeps no operator-wide state", "operator-wide state for an operator without");
    cairn_test_close(plain);
}

int main(void) {
    keyed_state_survives_snapshot_and_restore();
    chunks_of_two_subtasks_restore_into_one();
    the_table_grows_removes_and_iterates();
    byte_values_round_trip();
    misuse_is_explained();
    printf("C SDK, keyed state:\n%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
