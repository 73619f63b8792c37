/*
 * Event time: timers reach an operator's on_timer in order, with its key's keyed state;
 * window operators assign, fire, fire again within the allowed lateness, free their state
 * and count late records as the Rust SDK's do (guest-sdk/rust/src/window.rs), survive a
 * restore, and match an oracle on records out of order. Built natively with harness.c;
 * `cargo xtask test --lang c` runs it.
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

static void check_text(const char *got, const char *expected, const char *what) {
    bool same = strcmp(got, expected) == 0;
    check(same, what);
    if (!same) printf("    got:      %s\n    expected: %s\n", got, expected);
}

#define N(array) (sizeof array / sizeof *array)

/* ---------------------------------------------------------------------------------------
 * Timers: an operator counting records per key, with an event-time timer 10 ms after each
 * record and a processing-time timer at 100; a record of key "A" deletes the event-time
 * timer of key "a" at its timestamp + 10.
 * ------------------------------------------------------------------------------------- */

static int timeout_open(void *self, const cairn_context_t *ctx) {
    *(cairn_keyed_state_t **)self = ctx->keyed_state;
    return CAIRN_OK;
}

static int timeout_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    (void)out;
    cairn_keyed_state_t *counts = *(cairn_keyed_state_t **)self;
    if (r->key.len == 1 && r->key.ptr[0] == 'A') {
        cairn_timer_delete(CAIRN_EVENT_TIME, "a", 1, r->timestamp + 10);
        return CAIRN_OK;
    }
    uint64_t *n;
    if (cairn_keyed_get_or_insert(counts, r, (void **)&n) != CAIRN_OK) return CAIRN_ERROR;
    ++*n;
    if (cairn_timer_register(CAIRN_EVENT_TIME, r->key.ptr, r->key.len, r->timestamp + 10) !=
        CAIRN_OK)
        return CAIRN_ERROR;
    return cairn_timer_register(CAIRN_PROCESSING_TIME, r->key.ptr, r->key.len, 100);
}

static int timeout_on_timer(void *self, cairn_time_domain_t domain, const cairn_record_t *timer,
                            cairn_emitter_t *out) {
    cairn_keyed_state_t *counts = *(cairn_keyed_state_t **)self;
    uint64_t *n;
    if (cairn_keyed_get(counts, timer, (void **)&n) != CAIRN_OK) return CAIRN_ERROR;
    cairn_emit_begin(out, timer->key.ptr, timer->key.len);
    cairn_emit_write(out, timer->key.ptr, timer->key.len);
    const char *what = domain == CAIRN_EVENT_TIME ? " event " : " processing ";
    cairn_emit_write(out, what, strlen(what));
    cairn_emit_u64(out, n ? *n : 0);
    cairn_emit_end_with_timestamp(out, timer->timestamp);
    return CAIRN_OK;
}

static const cairn_operator_t TIMEOUT = {
    .name = "timeout",
    .size = sizeof(cairn_keyed_state_t *),
    .keyed_values = &cairn_codec_u64,
    .open = timeout_open,
    .process = timeout_process,
    .on_timer = timeout_on_timer,
};

/* Registers timers, and has no on_timer. */
static int forgetful_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    (void)self, (void)out;
    return cairn_timer_register(CAIRN_EVENT_TIME, r->key.ptr, r->key.len, r->timestamp);
}

static const cairn_operator_t FORGETFUL = {.name = "forgetful", .process = forgetful_process};

/* ---------------------------------------------------------------------------------------
 * Windows: records counted per key and window, shown as `key start-end:count`
 * ------------------------------------------------------------------------------------- */

static int count_add(void *acc, const cairn_record_t *record) {
    (void)record;
    ++*(uint64_t *)acc;
    return CAIRN_OK;
}

static int count_merge(void *acc, const void *other) {
    *(uint64_t *)acc += *(const uint64_t *)other;
    return CAIRN_OK;
}

static int count_emit(cairn_bytes_t key, cairn_window_t window, const void *acc,
                      cairn_emitter_t *out) {
    cairn_emit_begin(out, key.ptr, key.len);
    cairn_emit_write(out, key.ptr, key.len);
    cairn_emit_byte(out, ' ');
    cairn_emit_i64(out, window.start);
    cairn_emit_byte(out, '-');
    cairn_emit_i64(out, window.end);
    cairn_emit_byte(out, ':');
    cairn_emit_u64(out, *(const uint64_t *)acc);
    cairn_emit_end(out);
    return CAIRN_OK;
}

static int tumbling_10(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    return cairn_windows_tumbling(windows, 10);
}

static int sliding_10_5(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    return cairn_windows_sliding(windows, 10, 5);
}

static int tumbling_10_lateness_5(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    if (cairn_windows_tumbling(windows, 10) != CAIRN_OK) return CAIRN_ERROR;
    windows->allowed_lateness = 5;
    return CAIRN_OK;
}

static int tumbling_10_late_output(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    if (cairn_windows_tumbling(windows, 10) != CAIRN_OK) return CAIRN_ERROR;
    windows->late_output = "late";
    return CAIRN_OK;
}

static int session_3(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    return cairn_windows_session(windows, 3);
}

static int session_10(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx;
    return cairn_windows_session(windows, 10);
}

static int unset(const cairn_context_t *ctx, cairn_windows_t *windows) {
    (void)ctx, (void)windows;
    return CAIRN_OK;
}

#define COUNT_AGGREGATE(windows_fn)                                                            \
    {.acc_size = sizeof(uint64_t), .windows = windows_fn, .add = count_add, .emit = count_emit}
#define MERGING_COUNT_AGGREGATE(windows_fn)                                                    \
    {.acc_size = sizeof(uint64_t), .windows = windows_fn, .add = count_add,                    \
     .merge = count_merge, .emit = count_emit}

static const cairn_aggregate_t TUMBLING = COUNT_AGGREGATE(tumbling_10);
static const cairn_aggregate_t SLIDING = COUNT_AGGREGATE(sliding_10_5);
static const cairn_aggregate_t LENIENT = COUNT_AGGREGATE(tumbling_10_lateness_5);
static const cairn_aggregate_t LATE_OUTPUT = COUNT_AGGREGATE(tumbling_10_late_output);
static const cairn_aggregate_t UNSET = COUNT_AGGREGATE(unset);
static const cairn_aggregate_t SESSION = MERGING_COUNT_AGGREGATE(session_3);
static const cairn_aggregate_t LONG_SESSION = MERGING_COUNT_AGGREGATE(session_10);
static const cairn_aggregate_t UNMERGEABLE_SESSION = COUNT_AGGREGATE(session_3);

static const cairn_operator_t TUMBLING_OP = {.name = "tumbling", .window = &TUMBLING};
static const cairn_operator_t SLIDING_OP = {.name = "sliding", .window = &SLIDING};
static const cairn_operator_t LENIENT_OP = {.name = "lenient", .window = &LENIENT};
static const cairn_operator_t LATE_OUTPUT_OP = {.name = "late-output", .window = &LATE_OUTPUT};
static const cairn_operator_t UNSET_OP = {.name = "unset", .window = &UNSET};
static const cairn_operator_t SESSION_OP = {.name = "session", .window = &SESSION};
static const cairn_operator_t LONG_SESSION_OP = {.name = "long-session", .window = &LONG_SESSION};
static const cairn_operator_t UNMERGEABLE_OP = {.name = "unmergeable",
                                                .window = &UNMERGEABLE_SESSION};
static const cairn_operator_t MIXED_OP = {
    .name = "mixed", .window = &TUMBLING, .process = forgetful_process};

static int describe(const cairn_args_t *args, cairn_graph_t *graph) {
    (void)args;
    cairn_graph_name(graph, "event-time");
    return CAIRN_OK;
}

/* ---------------------------------------------------------------------------------------
 * Side outputs: records at odd timestamps to side output "odd", the others out; key "x"
 * sends one to "odd" and fails.
 * ------------------------------------------------------------------------------------- */

static int odd_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
    (void)self;
    if (r->timestamp % 2 || (r->key.len == 1 && r->key.ptr[0] == 'x'))
        cairn_emit_record(cairn_side_output("odd"), r);
    else
        cairn_emit_record(out, r);
    if (r->key.len == 1 && r->key.ptr[0] == 'x') return cairn_error("x fails");
    return CAIRN_OK;
}

static const cairn_operator_t ODD = {.name = "odd", .process = odd_process};

CAIRN_JOB(describe, &TIMEOUT, &FORGETFUL, &TUMBLING_OP, &SLIDING_OP, &LENIENT_OP, &LATE_OUTPUT_OP,
          &UNSET_OP, &MIXED_OP, &ODD, &SESSION_OP, &LONG_SESSION_OP, &UNMERGEABLE_OP);

/* ---------------------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------------------- */

static void *open_op(const char *name) {
    cairn_test_reset_host();
    char *error = NULL;
    void *instance = cairn_test_open(name, &error);
    if (instance == NULL) {
        printf("cannot open %s: %s\n", name, error);
        exit(1);
    }
    return instance;
}

static const char *process(void *instance, const char *keys, const int64_t *timestamps) {
    /* `keys`: one letter a record. */
    static char letters[64][2];
    const char *list[64];
    size_t n = strlen(keys);
    for (size_t i = 0; i < n; i++) {
        letters[i][0] = keys[i];
        letters[i][1] = 0;
        list[i] = letters[i];
    }
    return cairn_test_process_stamped(instance, list, timestamps, n);
}

static void timers_fire_in_order_with_their_keys_state(void) {
    void *op = open_op("timeout");
    check_text(process(op, "bab", (int64_t[]){5, 1, 3}), "", "timers registered, nothing out");
    check(cairn_test_timers() == 5, "one timer per key, domain and timestamp");
    check_text(cairn_test_advance(op, 0, 14), "a event 1@11,b event 2@13",
               "by timestamp, then key; each key's own count");
    check_text(cairn_test_advance(op, 1, 100), "a processing 1@100,b processing 2@100",
               "processing time, by its own clock");
    check_text(cairn_test_end_of_input(op), "b event 2@15", "the rest at the end of input");
    check(cairn_test_timers() == 0, "every timer fired");
    cairn_test_close(op);
}

static void a_deleted_timer_does_not_fire(void) {
    void *op = open_op("timeout");
    process(op, "aA", (int64_t[]){1, 1});
    check(cairn_test_timers() == 1, "the processing-time timer left");
    check_text(cairn_test_advance(op, 0, 20), "", "the deleted one does not fire");
    cairn_test_close(op);
}

static void timers_of_an_operator_without_on_timer_fail_it(void) {
    void *op = open_op("forgetful");
    process(op, "a", (int64_t[]){1});
    const char *fired = cairn_test_advance(op, 0, 1);
    check(strstr(fired, "error: timers fired for operator \"forgetful\", which has no on_timer") ==
              fired,
          "fired without on_timer: explained");
    cairn_test_close(op);
}

static void windows_are_checked(void) {
    cairn_windows_t w;
    check(cairn_windows_tumbling(&w, 0) == CAIRN_ERROR, "a tumbling window of 0 ms refused");
    check(cairn_windows_sliding(&w, 5, 10) == CAIRN_ERROR, "a slide over the size refused");
    check(cairn_windows_sliding(&w, 10, 5) == CAIRN_OK && w.size == 10 && w.slide == 5 &&
              w.allowed_lateness == 0,
          "a sliding window");
    cairn_test_reset_host();
    char *error = NULL;
    check(cairn_test_open("unset", &error) == NULL && strstr(error, "are not set"),
          "windows never set: explained");
    free(error);
    error = NULL;
    check(cairn_test_open("mixed", &error) == NULL && strstr(error, "is a window operator"),
          "a window operator with a process callback: explained");
    free(error);
}

static size_t chunks_of(void *op) {
    cairn_test_snapshot_t snapshot;
    char *error = NULL;
    if (!cairn_test_snapshot(op, &snapshot, &error)) {
        printf("snapshot: %s\n", error);
        exit(1);
    }
    size_t n = snapshot.chunks_len;
    cairn_test_snapshot_free(&snapshot);
    return n;
}

static void a_tumbling_window_fires_once_the_watermark_passes_its_end_and_is_freed(void) {
    void *op = open_op("tumbling");
    check_text(process(op, "aab", (int64_t[]){1, 5, 12}), "", "nothing before the watermark");
    check_text(cairn_test_advance(op, 0, 8), "", "not yet at 8");
    check_text(cairn_test_advance(op, 0, 9), "a 0-10:2@9", "fires at its last millisecond");
    check_text(cairn_test_end_of_input(op), "b 10-20:1@19", "the rest at the end of input");
    check(cairn_test_timers() == 0, "no timers left");
    check(chunks_of(op) == 0, "every window freed");
    check_text(process(op, "a", (int64_t[]){-1}), "", "a negative timestamp");
    check_text(cairn_test_end_of_input(op), "", "");
    cairn_test_close(op);

    op = open_op("tumbling");
    process(op, "a", (int64_t[]){-1});
    check_text(cairn_test_end_of_input(op), "a -10-0:1@-1", "windows before the epoch");
    cairn_test_close(op);
}

static void late_records_are_counted(void) {
    void *op = open_op("tumbling");
    process(op, "a", (int64_t[]){1});
    cairn_test_advance(op, 0, 9);
    check_text(process(op, "aa", (int64_t[]){3, 10}), "", "the late one dropped");
    check(cairn_test_counter(CAIRN_LATE_RECORDS_DROPPED) == 1, "and counted");
    check_text(cairn_test_end_of_input(op), "a 10-20:1@19", "the other counted in");
    cairn_test_close(op);
}

static void late_records_go_to_the_side_output_when_named(void) {
    void *op = open_op("late-output");
    cairn_test_advance(op, 0, 20);
    check_text(process(op, "ab", (int64_t[]){3, 25}), "", "nothing fires");
    check(cairn_test_counter(CAIRN_LATE_RECORDS_DROPPED) == 0, "none counted");
    check_text(cairn_test_side_output("late"), "a:@3", "the late record sent on as it came");
    check_text(cairn_test_end_of_input(op), "b 20-30:1@29", "the other counted in");
    cairn_test_close(op);
}

static void side_outputs_get_a_batch_per_call_and_nothing_from_a_failed_one(void) {
    void *op = open_op("odd");
    check_text(process(op, "abc", (int64_t[]){1, 2, 3}), "@2", "the even one out");
    check_text(cairn_test_side_output("odd"), "a:@1,c:@3", "the odd ones to the side output");
    check(strncmp(process(op, "dx", (int64_t[]){5, 6}), "error: x fails", 14) == 0,
          "the call fails");
    check_text(cairn_test_side_output("odd"), "a:@1,c:@3", "and sends nothing");
    check_text(process(op, "e", (int64_t[]){7}), "", "the next call");
    check_text(cairn_test_side_output("odd"), "a:@1,c:@3,e:@7", "sends its own alone");
    cairn_test_close(op);
}

static void within_the_allowed_lateness_a_window_fires_again_then_goes(void) {
    void *op = open_op("lenient");
    process(op, "a", (int64_t[]){1});
    check_text(cairn_test_advance(op, 0, 9), "a 0-10:1@9", "fired");
    check_text(process(op, "a", (int64_t[]){2}), "a 0-10:2@9", "fired again at once, updated");
    check_text(cairn_test_advance(op, 0, 13), "", "nothing more");
    check(cairn_test_timers() == 1, "the cleanup timer at 14");
    cairn_test_advance(op, 0, 14);
    check(cairn_test_timers() == 0, "cleaned up");
    check(chunks_of(op) == 0, "the state freed");
    process(op, "a", (int64_t[]){3});
    check(cairn_test_counter(CAIRN_LATE_RECORDS_DROPPED) == 1, "then late");
    cairn_test_close(op);
}

static void a_record_counts_in_each_sliding_window_it_falls_in(void) {
    void *op = open_op("sliding");
    process(op, "aa", (int64_t[]){7, 12});
    check_text(cairn_test_end_of_input(op), "a 0-10:1@9,a 5-15:2@14,a 10-20:1@19",
               "sliding windows");
    cairn_test_close(op);

    op = open_op("sliding");
    process(op, "a", (int64_t[]){INT64_MIN + 1}); /* INT64_MIN: no timestamp */
    check_text(cairn_test_end_of_input(op),
               "a -9223372036854775808--9223372036854775798:1@-9223372036854775799",
               "a window reaching below the smallest timestamp starts there");
    cairn_test_close(op);
}

static void session_windows_merge_records_closer_than_the_gap(void) {
    void *op = open_op("session");
    process(op, "aab", (int64_t[]){1, 6, 1});
    /* [1,4) and [6,9): a record at 4 bridges them into [1,9). */
    process(op, "aa", (int64_t[]){4, 20});
    check_text(cairn_test_end_of_input(op), "b 1-4:1@3,a 1-9:3@8,a 20-23:1@22",
               "merged sessions");
    check(cairn_test_timers() == 0, "the merged-away windows' timers find nothing");
    check(chunks_of(op) == 0, "every session freed");
    cairn_test_close(op);

    op = open_op("session");
    process(op, "a", (int64_t[]){1});
    process(op, "a", (int64_t[]){2});
    check_text(cairn_test_end_of_input(op), "a 1-5:2@4", "a record within a session extends it");
    cairn_test_close(op);

    char *error = NULL;
    cairn_test_reset_host();
    check(cairn_test_open("unmergeable", &error) == NULL && strstr(error, "merge callback"),
          "session windows without merge: explained");
    free(error);
    cairn_windows_t w;
    check(cairn_windows_session(&w, 0) == CAIRN_ERROR, "a gap of 0 refused");
}

static void a_late_session_record_that_meets_an_open_session_joins_it(void) {
    void *op = open_op("long-session");
    process(op, "a", (int64_t[]){5});
    cairn_test_advance(op, 0, 12);
    check_text(process(op, "ab", (int64_t[]){2, 1}), "", "nothing fires");
    check(cairn_test_counter(CAIRN_LATE_RECORDS_DROPPED) == 1, "only b's is late");
    check_text(cairn_test_end_of_input(op), "a 2-15:2@14", "a's joined the open session");
    cairn_test_close(op);
}

static void windows_survive_a_restore(void) {
    void *op = open_op("tumbling");
    process(op, "ab", (int64_t[]){1, 11});
    cairn_test_snapshot_t snapshot;
    char *error = NULL;
    check(cairn_test_snapshot(op, &snapshot, &error), "snapshot");
    check(snapshot.chunks_len > 0 && snapshot.value_encoding == CAIRN_ENCODING_BYTES,
          "the windows as keyed state, bytes");
    char *open_error = NULL;
    void *restored = cairn_test_open("tumbling", &open_error);
    check_text(cairn_test_restore_all(restored, snapshot.version, snapshot.chunks,
                                      snapshot.chunks_len, NULL, 0),
               "", "restored");
    cairn_test_snapshot_free(&snapshot);
    cairn_test_close(op);
    process(restored, "a", (int64_t[]){2});
    check_text(cairn_test_end_of_input(restored), "a 0-10:2@9,b 10-20:1@19",
               "windows and their timers carry on");
    cairn_test_close(restored);

    /* Another language's window state (Rust's postcard: one pane, (0, 10), count 3). */
    cairn_buffer_t entries = {0};
    const uint8_t postcard[] = {1, 0, 20, 3};
    cairn_chunk_put(&entries, "a", 1, postcard, sizeof postcard);
    cairn_test_chunk_t foreign = {cairn_test_key_group((const uint8_t *)"a", 1),
                                  {entries.ptr, entries.len}};
    void *other = cairn_test_open("tumbling", &open_error);
    const char *refused = cairn_test_restore_all(other, 1, &foreign, 1, NULL, 0);
    check(strstr(refused, "not in the encoding of the C and Zig SDKs' window operator") != NULL,
          "another encoding refused, saying so");
    cairn_test_close(other);
    cairn_buffer_free(&entries);
}

enum { RECORDS = 200, KEYS = 5, WINDOWS = 80 };

/* Adds the windows shown in `text` (`k start-end:count`, comma-separated) to `got`; false
 * for one that is not, or a window fired twice. */
static bool collect(const char *text, uint64_t got[KEYS][WINDOWS]) {
    for (const char *item = text; *item; item++) {
        long long start, end;
        unsigned long long count;
        char key;
        if (sscanf(item, "%c %lld-%lld:%llu", &key, &start, &end, &count) != 4) return false;
        if (key < 'a' || key >= 'a' + KEYS || start < 0 || start / 10 >= WINDOWS ||
            got[key - 'a'][start / 10] != 0)
            return false;
        got[key - 'a'][start / 10] = count;
        item = strchr(item, ',');
        if (item == NULL) break;
    }
    return true;
}

/* Records out of order by at most `bound`, the watermark trailing the highest timestamp by
 * the bound (as the host's strategy makes it): every record counts, in exactly its window,
 * whatever the order and the watermark steps. */
static void tumbling_counts_match_an_oracle(void) {
    uint64_t seed = 42;
    for (int round = 0; round < 50; round++) {
        void *op = open_op("tumbling");
        static uint64_t expected[KEYS][WINDOWS], got[KEYS][WINDOWS];
        memset(expected, 0, sizeof expected);
        memset(got, 0, sizeof got);
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t bound = (int64_t)((seed >> 33) % 30);
        size_t step = 1 + (size_t)((seed >> 40) % 19);
        char keys[RECORDS + 1] = {0};
        int64_t stamps[RECORDS];
        for (int i = 0; i < RECORDS; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            keys[i] = (char)('a' + (seed >> 33) % KEYS);
            stamps[i] = i * 3 + (int64_t)((seed >> 40) % (uint64_t)(bound + 1));
            expected[keys[i] - 'a'][stamps[i] / 10]++;
        }
        int64_t highest = INT64_MIN;
        bool ok = true;
        for (size_t at = 0; at < RECORDS && ok; at += step) {
            size_t n = at + step > RECORDS ? RECORDS - at : step;
            char chunk[RECORDS + 1] = {0};
            memcpy(chunk, keys + at, n);
            ok = collect(process(op, chunk, stamps + at), got);
            for (size_t i = at; i < at + n; i++) highest = stamps[i] > highest ? stamps[i] : highest;
            ok = ok && collect(cairn_test_advance(op, 0, highest - bound - 1), got);
        }
        ok = ok && collect(cairn_test_end_of_input(op), got);
        ok = ok && memcmp(got, expected, sizeof got) == 0;
        ok = ok && cairn_test_counter(CAIRN_LATE_RECORDS_DROPPED) == 0 && cairn_test_timers() == 0;
        check(ok, "tumbling counts match the oracle");
        if (!ok) printf("    round %d, bound %lld, step %zu\n", round, (long long)bound, step);
        cairn_test_close(op);
    }
}

int main(void) {
    timers_fire_in_order_with_their_keys_state();
    a_deleted_timer_does_not_fire();
    timers_of_an_operator_without_on_timer_fail_it();
    windows_are_checked();
    a_tumbling_window_fires_once_the_watermark_passes_its_end_and_is_freed();
    late_records_are_counted();
    late_records_go_to_the_side_output_when_named();
    side_outputs_get_a_batch_per_call_and_nothing_from_a_failed_one();
    within_the_allowed_lateness_a_window_fires_again_then_goes();
    a_record_counts_in_each_sliding_window_it_falls_in();
    session_windows_merge_records_closer_than_the_gap();
    a_late_session_record_that_meets_an_open_session_joins_it();
    windows_survive_a_restore();
    tumbling_counts_match_an_oracle();
    printf("event_time: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
