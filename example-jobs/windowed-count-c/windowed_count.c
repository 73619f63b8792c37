/*
 * Windowed word count in C, the twin of Rust's `windowed-count` (the event-time oracle job):
 * the same arguments, graph and output. Counts each word per tumbling window of event time,
 * so its complete output is known from the input alone.
 *
 *   cairn run windowed-count-c.wasm -p 4 -- --input events.txt --output out/ \
 *       [--window MS] [--max-delay MS] [--idleness MS] [--allowed-lateness MS] \
 *       [--late-output DIR] [--rate LINES_PER_S] [--also-stdin]
 *
 * Input lines are `<epoch-ms><TAB><text>` (`-` as input reads standard input, `--rate`
 * paces reading a file); each word of the text (split on Unicode whitespace as word-count-c
 * splits it) takes the line's timestamp as its event time, and a line that is not of that
 * form is skipped and counted in `numMalformedLines`. Watermarks trail the highest timestamp
 * by `--max-delay` (default 0; Flink's bounded out-of-orderness), and with `--idleness` a
 * stamping subtask without records for that long stops holding event time back. Each window
 * of `--window` ms (default 1000, starting at `ts - ts mod window`) emits one record per
 * word once the watermark passes its end, keyed by the word, valued
 * `<window-start><TAB><word><TAB><count>` and stamped with the window's last millisecond;
 * the file sink writes them exactly-once (`-` as output: standard output). A record behind
 * the watermark by more than `--allowed-lateness` (default 0) when it arrives is late:
 * dropped and counted in `numLateRecordsDropped`, or with `--late-output DIR` written there
 * as `<timestamp><TAB><word>` (through the count's side output `late`). `--also-stdin` adds
 * standard input as a second source of lines (which stays idle while nothing is written to
 * it).
 */
#include <string.h>

#include "cairn.h"

/* A line of input that is not `<epoch-ms><TAB><text>`: skipped, and counted. */
#define MALFORMED_LINES "numMalformedLines"

/* The count's side output of late records. */
#define LATE "late"

/* ---------------------------------------------------------------------------------------
 * stamp: `<epoch-ms><TAB><text>` lines to their words, keyed by the word, each with the
 * line's timestamp
 * ------------------------------------------------------------------------------------- */

/* Skips Unicode whitespace from `*pos`. */
static void skip_whitespace(cairn_bytes_t text, size_t *pos) {
    size_t w;
    while ((w = cairn_whitespace_len(text.ptr + *pos, text.len - *pos)) != 0) *pos += w;
}

/* Parses `field` as Rust's `str::trim` then `i64::from_str` do: Unicode whitespace around
 * an optional sign and decimal digits, within the range of an i64. */
static bool parse_ms(cairn_bytes_t field, int64_t *ms) {
    size_t pos = 0;
    skip_whitespace(field, &pos);
    bool negative = pos < field.len && field.ptr[pos] == '-';
    if (pos < field.len && (field.ptr[pos] == '-' || field.ptr[pos] == '+')) pos++;
    size_t digits = pos;
    /* The magnitude, up to 2^63 for a negative number. */
    uint64_t n = 0, limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; pos < field.len && field.ptr[pos] >= '0' && field.ptr[pos] <= '9'; pos++) {
        uint64_t d = field.ptr[pos] - '0';
        if (n > (limit - d) / 10) return false;
        n = n * 10 + d;
    }
    if (pos == digits) return false;
    skip_whitespace(field, &pos);
    if (pos != field.len) return false;
    *ms = negative ? (int64_t)(0 - n) : (int64_t)n;
    return true;
}

static int stamp_process(void *self, const cairn_record_t *line, cairn_emitter_t *out) {
    (void)self;
    const uint8_t *tab = memchr(line->value.ptr, '\t', line->value.len);
    int64_t timestamp;
    if (tab == NULL ||
        !parse_ms((cairn_bytes_t){line->value.ptr, (size_t)(tab - line->value.ptr)},
                  &timestamp)) {
        cairn_counter_add(MALFORMED_LINES, 1);
        return CAIRN_OK;
    }
    size_t after_tab = (size_t)(tab - line->value.ptr) + 1;
    cairn_bytes_t text = {tab + 1, line->value.len - after_tab}, word;
    size_t pos = 0;
    while (cairn_next_word(text, &pos, &word))
        cairn_emit_with_timestamp(out, word.ptr, word.len, NULL, 0, timestamp);
    return CAIRN_OK;
}

static const cairn_operator_t STAMP = {.name = "stamp", .process = stamp_process};

/* ---------------------------------------------------------------------------------------
 * count: a word's records per tumbling window, the window's size and allowed lateness in
 * the node's options `window` and `allowed-lateness`, late records to side output
 * `late-output` if the node names one
 * ------------------------------------------------------------------------------------- */

static int words_per_window_windows(const cairn_context_t *ctx, cairn_windows_t *windows) {
    uint64_t size, lateness;
    if (cairn_context_option_u64(ctx, "window", 0, &size) != CAIRN_OK ||
        cairn_context_option_u64(ctx, "allowed-lateness", 0, &lateness) != CAIRN_OK ||
        cairn_windows_tumbling(windows, size) != CAIRN_OK)
        return CAIRN_ERROR;
    if (lateness > INT64_MAX)
        return cairn_error("option allowed-lateness: %llu ms is too long",
                           (unsigned long long)lateness);
    windows->allowed_lateness = (int64_t)lateness;
    windows->late_output = cairn_context_option(ctx, "late-output");
    return CAIRN_OK;
}

static int words_per_window_add(void *count, const cairn_record_t *record) {
    (void)record;
    ++*(uint64_t *)count;
    return CAIRN_OK;
}

static int words_per_window_emit(cairn_bytes_t word, cairn_window_t window, const void *count,
                                 cairn_emitter_t *out) {
    cairn_emit_begin(out, word.ptr, word.len);
    cairn_emit_i64(out, window.start);
    cairn_emit_byte(out, '\t');
    cairn_emit_write(out, word.ptr, word.len);
    cairn_emit_byte(out, '\t');
    cairn_emit_u64(out, *(const uint64_t *)count);
    cairn_emit_end(out);
    return CAIRN_OK;
}

static const cairn_aggregate_t WORDS_PER_WINDOW = {
    .acc_size = sizeof(uint64_t),
    .windows = words_per_window_windows,
    .add = words_per_window_add,
    .emit = words_per_window_emit,
};

static const cairn_operator_t COUNT = {.name = "count", .window = &WORDS_PER_WINDOW};

/* ---------------------------------------------------------------------------------------
 * late-words: late records (the words as stamped) as `<timestamp><TAB><word>`
 * ------------------------------------------------------------------------------------- */

static int late_words_process(void *self, const cairn_record_t *record, cairn_emitter_t *out) {
    (void)self;
    cairn_emit_begin(out, record->key.ptr, record->key.len);
    cairn_emit_i64(out, record->has_timestamp ? record->timestamp : 0);
    cairn_emit_byte(out, '\t');
    cairn_emit_write(out, record->key.ptr, record->key.len);
    cairn_emit_end(out);
    return CAIRN_OK;
}

static const cairn_operator_t LATE_WORDS = {.name = "late-words", .process = late_words_process};

/* ---------------------------------------------------------------------------------------
 * The graph
 * ------------------------------------------------------------------------------------- */

static int describe(const cairn_args_t *args, cairn_graph_t *job) {
    const char *input = cairn_args_required(args, "--input");
    if (input == NULL) return CAIRN_ERROR;
    const char *output = cairn_args_required(args, "--output");
    if (output == NULL) return CAIRN_ERROR;
    const char *rate = cairn_args_value(args, "--rate");
    uint64_t window, max_delay, lateness, idleness;
    if (cairn_args_u64(args, "--window", 1000, &window) != CAIRN_OK ||
        cairn_args_u64(args, "--max-delay", 0, &max_delay) != CAIRN_OK ||
        cairn_args_u64(args, "--allowed-lateness", 0, &lateness) != CAIRN_OK ||
        cairn_args_u64(args, "--idleness", 0, &idleness) != CAIRN_OK)
        return CAIRN_ERROR;
    if (window == 0 || window > INT64_MAX)
        return cairn_error("--window: a window's size must be 1 ms or more (below 2^63), not %llu",
                           (unsigned long long)window);

    const char *late_output = cairn_args_value(args, "--late-output");
    bool idle = cairn_args_value(args, "--idleness") != NULL;

    cairn_graph_name(job, "windowed-count");
    cairn_stream_t lines;
    if (strcmp(input, "-") == 0) {
        lines = cairn_source_stdin(job, "lines");
    } else {
        lines = cairn_source_file(job, "lines", input);
        if (rate) cairn_stream_option(lines, "rate", rate);
    }
    cairn_stream_parallelism(lines, 1);
    cairn_stream_t words = cairn_stream_operator(lines, "stamp", "stamp", CAIRN_REBALANCE);
    cairn_stream_watermarks(words, max_delay);
    if (idle) cairn_stream_idleness(words, idleness);
    cairn_stream_t counts = cairn_stream_operator(words, "count", "count", CAIRN_BY_KEY);
    if (cairn_args_flag(args, "--also-stdin")) {
        cairn_stream_t more = cairn_stream_parallelism(cairn_source_stdin(job, "more-lines"), 1);
        cairn_stream_t more_words =
            cairn_stream_operator(more, "stamp-more", "stamp", CAIRN_REBALANCE);
        cairn_stream_watermarks(more_words, max_delay);
        if (idle) cairn_stream_idleness(more_words, idleness);
        cairn_stream_input(counts, more_words, CAIRN_BY_KEY);
    }
    cairn_buffer_t number = {0};
    cairn_buffer_append_u64(&number, window);
    cairn_buffer_push(&number, 0);
    cairn_stream_option(counts, "window", (const char *)number.ptr);
    number.len = 0;
    cairn_buffer_append_u64(&number, lateness);
    cairn_buffer_push(&number, 0);
    cairn_stream_option(counts, "allowed-lateness", (const char *)number.ptr);
    cairn_buffer_free(&number);
    if (strcmp(output, "-") == 0)
        cairn_sink_stdout(counts, "out", CAIRN_FORWARD);
    else
        cairn_sink_file(counts, "out", output, CAIRN_FORWARD);
    if (late_output) {
        cairn_stream_option(counts, "late-output", LATE);
        cairn_stream_t late = cairn_stream_operator(cairn_stream_side_output(counts, LATE),
                                                    "late-words", "late-words", CAIRN_FORWARD);
        cairn_sink_file(late, "late-out", late_output, CAIRN_FORWARD);
    }
    return CAIRN_OK;
}

CAIRN_JOB(describe, &STAMP, &COUNT, &LATE_WORDS);
