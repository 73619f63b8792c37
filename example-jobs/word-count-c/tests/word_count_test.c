/*
 * word-count-c's `count`: its state (version 3), and the versions it migrates (2 and 4) or
 * refuses (1). Built natively with the C SDK's test harness (guest-sdk/c/tests/harness.c);
 * `cargo xtask sdk-test --lang c` runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn.h"
#include "harness.h"

static int passed, failed;

static void expect(const char *got, const char *expected, const char *what) {
    if (strcmp(got, expected) == 0) {
        passed++;
    } else {
        failed++;
        printf("not ok - %s:\n    got      %s\n    expected %s\n", what, got, expected);
    }
}

static void *open_count(void) {
    char *error = NULL;
    void *count = cairn_test_open("count", &error);
    if (count == NULL) {
        printf("cannot open count: %s\n", error);
        exit(1);
    }
    return count;
}

static const char *words(void *count, const char *const *keys, size_t n) {
    return cairn_test_process_keys(count, 0, true, keys, n, NULL);
}

/* One chunk holding `key` -> `value` (`value_len` bytes), in the key's key group. */
static cairn_test_chunk_t chunk_of(cairn_buffer_t *entries, const char *key, const void *value,
                                   size_t value_len) {
    entries->len = 0;
    cairn_chunk_put(entries, key, strlen(key), value, value_len);
    return (cairn_test_chunk_t){cairn_test_key_group((const uint8_t *)key, strlen(key)),
                                {entries->ptr, entries->len}};
}

static void counts_are_keyed_state_of_version_3(void) {
    void *count = open_count();
    const char *text[] = {"to", "be", "or", "not", "to", "be"};
    expect(words(count, text, 6), "to\t1,be\t1,or\t1,not\t1,to\t2,be\t2", "running counts");
    cairn_test_snapshot_t s;
    char *error = NULL;
    if (!cairn_test_snapshot(count, &s, &error)) exit(1);
    char summary[64];
    snprintf(summary, sizeof summary, "v%u items %zu encoding %u", s.version, s.items_len,
             s.value_encoding);
    expect(summary, "v3 items 0 encoding 2", "version 3, keyed only, u64 little-endian");
    cairn_test_close(count);

    count = open_count();
    expect(cairn_test_restore_all(count, 3, s.chunks, s.chunks_len, NULL, 0), "", "restores v3");
    const char *more[] = {"be", "question"};
    expect(words(count, more, 2), "be\t3,question\t1", "counts go on");
    cairn_test_snapshot_free(&s);
    cairn_test_close(count);
}

static void migrates_version_2(void) {
    void *count = open_count();
    cairn_test_bytes_t item = {(uint8_t *)"be\t2\nto\t12\n", 11};
    expect(cairn_test_restore_all(count, 2, NULL, 0, &item, 1), "", "restores v2");
    const char *more[] = {"to", "be", "or"};
    expect(words(count, more, 3), "to\t13,be\t3,or\t1", "v2 counts moved into keyed state");
    cairn_test_close(count);
}

static void migrates_version_4(void) {
    void *count = open_count();
    cairn_buffer_t entries = {0};
    cairn_test_chunk_t chunk = chunk_of(&entries, "to", "41", 2);
    expect(cairn_test_restore_all(count, 4, &chunk, 1, NULL, 0), "", "restores v4");
    const char *more[] = {"to"};
    expect(words(count, more, 1), "to\t42", "v4 counts moved into keyed state");
    cairn_buffer_free(&entries);
    cairn_test_close(count);
}

static void refuses_version_1_and_bad_counts(void) {
    const char *refusal = "error: unknown state version 1: this count reads versions 2, 3 and 4";
    void *count = open_count();
    cairn_test_bytes_t item = {(uint8_t *)"\x01\x02to\x03", 5};
    expect(cairn_test_restore_all(count, 1, NULL, 0, &item, 1), refusal, "v1 items refused");
    cairn_buffer_t entries = {0};
    cairn_test_chunk_t chunk = chunk_of(&entries, "to", "x", 1);
    expect(cairn_test_restore_all(count, 1, &chunk, 1, NULL, 0), refusal, "v1 chunks refused");
    expect(cairn_test_restore_all(count, 4, &chunk, 1, NULL, 0),
           "error: version 4 state: a count is not a number", "a v4 count that is no number");
    cairn_test_bytes_t no_tab = {(uint8_t *)"to 3\n", 5};
    expect(cairn_test_restore_all(count, 2, NULL, 0, &no_tab, 1),
           "error: version 2 state: line 1 is not word<TAB>count", "a v2 line without a tab");
    cairn_buffer_free(&entries);
    cairn_test_close(count);
}

int main(void) {
    counts_are_keyed_state_of_version_3();
    migrates_version_2();
    migrates_version_4();
    refuses_version_1_and_bad_counts();
    printf("word-count-c:\n%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
