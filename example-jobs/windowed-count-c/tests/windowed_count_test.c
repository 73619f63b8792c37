/*
 * windowed-count-c's operators: `stamp` parses `<epoch-ms><TAB><text>` lines into stamped
 * words and counts the malformed ones; `count` counts a word per window of the node's
 * `window` option, emitting `<window-start><TAB><word><TAB><count>` at the window's last
 * millisecond. Built natively with the C SDK's test harness (guest-sdk/c/tests/harness.c);
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

static void *open_op(const char *name, const char *const *options, size_t n) {
    cairn_test_reset_host();
    char *error = NULL;
    void *op = cairn_test_open_with_options(name, options, n, &error);
    if (op == NULL) {
        printf("cannot open %s: %s\n", name, error);
        exit(1);
    }
    return op;
}

/* Stamps one line: the words emitted, as `key@timestamp`, comma-separated. */
static const char *stamp(void *op, const char *line) {
    static char shown[1024];
    uint32_t offsets[2] = {0, (uint32_t)strlen(line)};
    cairn_test_batch_t batch = {(uint8_t *)line, strlen(line), offsets, 2, NULL, 0}, out;
    char *error = NULL;
    if (!cairn_test_process(op, 0, &batch, false, &out, &error)) {
        snprintf(shown, sizeof shown, "error: %s", error);
        free(error);
        return shown;
    }
    size_t at = 0, start = 0;
    shown[0] = 0;
    for (size_t i = 0; i < out.offsets_len / 2; i++) {
        at += (size_t)snprintf(shown + at, sizeof shown - at, "%s%.*s@%lld", i ? "," : "",
                               (int)(out.offsets[2 * i] - start),
                               (const char *)out.data + start,
                               out.timestamps_len ? (long long)out.timestamps[i] : -1LL);
        start = out.offsets[2 * i + 1];
    }
    cairn_test_batch_free(&out);
    return shown;
}

static void lines_become_stamped_words(void) {
    void *op = open_op("stamp", NULL, 0);
    expect(stamp(op, "1000\tto be\xc2\xa0or  not\t"), "to@1000,be@1000,or@1000,not@1000",
           "words split on Unicode whitespace");
    expect(stamp(op, " -5 \tx"), "x@-5", "the timestamp trimmed, negative");
    expect(stamp(op, "7\t"), "", "a line without words");
    expect(stamp(op, "9223372036854775807\tmax"), "max@9223372036854775807", "the largest");
    const char *malformed[] = {"no tab", "12x\tword", "\tword", "+\tword",
                               "9223372036854775808\ttoo big"};
    for (size_t i = 0; i < sizeof malformed / sizeof *malformed; i++)
        expect(stamp(op, malformed[i]), "", malformed[i]);
    char count[32];
    snprintf(count, sizeof count, "%llu",
             (unsigned long long)cairn_test_counter("numMalformedLines"));
    expect(count, "5", "malformed lines counted");
    cairn_test_close(op);
}

static void words_are_counted_per_window(void) {
    const char *options[] = {"window", "10", "allowed-lateness", "0"};
    void *op = open_op("count", options, 2);
    const char *words[] = {"to", "be", "to", "to"};
    expect(cairn_test_process_stamped(op, words, (int64_t[]){1, 2, 9, 10}, 4), "", "buffered");
    expect(cairn_test_advance(op, 0, 9), "0\tbe\t1@9,0\tto\t2@9", "the first window");
    expect(cairn_test_end_of_input(op), "10\tto\t1@19", "the last window");
    cairn_test_close(op);

    const char *no_window[] = {"window", "0"};
    char *error = NULL;
    cairn_test_reset_host();
    expect(cairn_test_open_with_options("count", no_window, 1, &error) ? "opened" : error,
           "a window's size must be 1 ms or more (below 2^63), not 0", "a window of 0 refused");
    free(error);
}

static void late_words_go_to_the_late_output(void) {
    const char *options[] = {"window", "10", "allowed-lateness", "0", "late-output", "late"};
    void *op = open_op("count", options, 3);
    cairn_test_advance(op, 0, 20);
    const char *words[] = {"to"};
    expect(cairn_test_process_stamped(op, words, (int64_t[]){3}, 1), "", "late");
    expect(cairn_test_side_output("late"), "to:@3", "to the side output");
    cairn_test_close(op);

    op = open_op("late-words", NULL, 0);
    expect(cairn_test_process_stamped(op, words, (int64_t[]){3}, 1), "3\tto",
           "as <timestamp><TAB><word>");
    cairn_test_close(op);
}

int main(void) {
    lines_become_stamped_words();
    words_are_counted_per_window();
    late_words_go_to_the_late_output();
    printf("windowed-count-c:\n%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
