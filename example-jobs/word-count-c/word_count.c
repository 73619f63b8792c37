/*
 * Word count in C: the same job as the Rust `word-count` — same arguments, graph and
 * output (`word<TAB>n` for the n-th occurrence of each word) — and the same `count` state,
 * so that C, Zig, Rust and the other languages' word counts resume from each other's
 * checkpoints and savepoints, at any parallelism.
 *
 *   cairn run word-count-c.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
 *
 * (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
 * paces reading the file.) `kafka://HOST:PORT/TOPIC` as input reads the topic from its
 * earliest offset to the end it had when the job first started, then ends, as a file does;
 * as output it writes the topic exactly-once. Each output record is keyed by its word (a
 * Kafka output topic is keyed by word; files hold the values).
 *
 * The `count` state is version 3 of word count's shared encodings: keyed state, key the
 * word (UTF-8), value its count, u64 little-endian; no operator-wide state. It also reads
 * version 2 (operator-wide UTF-8 `word<TAB>count<LF>` lines, what the word counts on
 * cairn:job@0.2.0 wrote) and version 4 (keyed, the count in decimal digits, what Rust's
 * `word-count-v2` writes), moving their counts into its keyed state; version 1 (Rust's
 * postcard, only in very old savepoints) is refused.
 */
#include <string.h>

#include "cairn.h"

/* ---------------------------------------------------------------------------------------
 * split: lines to words, keyed by the word
 * ------------------------------------------------------------------------------------- */

static int split_process(void *self, const cairn_record_t *line, cairn_emitter_t *out) {
    (void)self;
    cairn_bytes_t word;
    size_t pos = 0;
    while (cairn_next_word(line->value, &pos, &word)) cairn_emit_keyed(out, word.ptr, word.len, NULL, 0);
    return CAIRN_OK;
}

static const cairn_operator_t SPLIT = {
    .name = "split",
    .process = split_process,
};

/* ---------------------------------------------------------------------------------------
 * count: a counter per word in keyed state, emitting the running count
 * ------------------------------------------------------------------------------------- */

typedef struct count {
    cairn_keyed_state_t *counts; /* u64 per word */
    /* Counts migrated from an older encoding, and from which: reported once restored. */
    size_t migrated;
    uint32_t migrated_from;
} count_t;

static int count_open(void *self, const cairn_context_t *ctx) {
    ((count_t *)self)->counts = ctx->keyed_state;
    return CAIRN_OK;
}

static int count_process(void *self, const cairn_record_t *record, cairn_emitter_t *out) {
    count_t *c = self;
    uint64_t *n;
    if (cairn_keyed_get_or_insert(c->counts, record, (void **)&n) != CAIRN_OK) return CAIRN_ERROR;
    ++*n;
    cairn_emit_begin(out, record->key.ptr, record->key.len);
    cairn_emit_write(out, record->key.ptr, record->key.len);
    cairn_emit_byte(out, '\t');
    cairn_emit_u64(out, *n);
    cairn_emit_end(out);
    return CAIRN_OK;
}

static int unknown_version(uint32_t version) {
    return cairn_error("unknown state version %u: this count reads versions 2, 3 and 4", version);
}

/* A count in decimal digits, as versions 2 and 4 write it. */
static int parse_count(const uint8_t *digits, size_t len, uint64_t *n, uint32_t version) {
    bool ok = len > 0;
    uint64_t value = 0;
    for (size_t i = 0; ok && i < len; i++) {
        unsigned d = (unsigned)digits[i] - '0';
        ok = d <= 9 && value <= (UINT64_MAX - d) / 10;
        value = value * 10 + d;
    }
    if (!ok) return cairn_error("version %u state: a count is not a number", version);
    *n = value;
    return CAIRN_OK;
}

static void migrated(count_t *c, uint32_t version) {
    c->migrated++;
    c->migrated_from = version;
}

/* Version 2: operator-wide `word<TAB>count<LF>` lines, each word moved into keyed state. */
static int count_restore(void *self, const uint8_t *data, size_t len, uint32_t version) {
    count_t *c = self;
    if (version != 2) return unknown_version(version);
    for (size_t pos = 0, line_no = 1; pos < len; line_no++) {
        const uint8_t *line = data + pos;
        const uint8_t *end = memchr(line, '\n', len - pos);
        size_t line_len = end ? (size_t)(end - line) : len - pos;
        pos += line_len + (end != NULL);
        const uint8_t *tab = memchr(line, '\t', line_len);
        if (tab == NULL)
            return cairn_error("version 2 state: line %zu is not word<TAB>count", line_no);
        size_t word_len = (size_t)(tab - line);
        uint64_t n;
        if (parse_count(tab + 1, line_len - word_len - 1, &n, version) != CAIRN_OK ||
            cairn_keyed_put_key(c->counts, line, word_len, &n) != CAIRN_OK)
            return CAIRN_ERROR;
        migrated(c, version);
    }
    return CAIRN_OK;
}

/* Version 3 is this count's own; version 4's decimal counts are moved in one by one. */
static int count_restore_keyed(void *self, const cairn_keyed_chunk_t *chunk, uint32_t version) {
    count_t *c = self;
    if (version == 3) return cairn_keyed_restore_chunk(c->counts, chunk);
    if (version != 4) return unknown_version(version);
    size_t pos = 0;
    cairn_chunk_entry_t entry;
    int more;
    while ((more = cairn_chunk_next(chunk->entries, &pos, &entry)) == 1) {
        uint64_t n;
        if (entry.tombstone) continue;
        if (parse_count(entry.value.ptr, entry.value.len, &n, version) != CAIRN_OK ||
            cairn_keyed_put_key(c->counts, entry.key.ptr, entry.key.len, &n) != CAIRN_OK)
            return CAIRN_ERROR;
        migrated(c, version);
    }
    return more == 0 ? CAIRN_OK : CAIRN_ERROR;
}

static int count_restored(void *self) {
    count_t *c = self;
    if (c->migrated)
        cairn_info("migrated %zu word counts from state version %u", c->migrated,
                   c->migrated_from);
    c->migrated = 0;
    return CAIRN_OK;
}

static const cairn_operator_t COUNT = {
    .name = "count",
    .size = sizeof(count_t),
    .state_version = 3,
    .restores_other_versions = true,
    .keyed_values = &cairn_codec_u64,
    .open = count_open,
    .process = count_process,
    .restore_keyed = count_restore_keyed,
    .restore = count_restore,
    .restored = count_restored,
};

/* ---------------------------------------------------------------------------------------
 * The graph
 * ------------------------------------------------------------------------------------- */

/* A `kafka://HOST:PORT/TOPIC` argument: its bootstrap servers (NUL-terminated) and topic. */
typedef struct kafka_url {
    cairn_buffer_t servers;
    const char *topic; /* NULL: the argument is not a Kafka URL */
} kafka_url_t;

static const char KAFKA_SCHEME[] = "kafka://";

/* Reads argument `name`'s value into `*url` if it is a Kafka URL (free url->servers);
 * CAIRN_ERROR when it is a malformed one. */
static int parse_kafka_url(const char *name, const char *value, kafka_url_t *url) {
    if (strncmp(value, KAFKA_SCHEME, strlen(KAFKA_SCHEME)) != 0) return CAIRN_OK;
    const char *servers = value + strlen(KAFKA_SCHEME);
    const char *slash = strchr(servers, '/');
    if (slash == NULL || slash == servers || slash[1] == 0 || strchr(slash + 1, '/') != NULL)
        return cairn_error("invalid %s %s: expected kafka://HOST:PORT/TOPIC", name, value);
    cairn_buffer_append(&url->servers, servers, (size_t)(slash - servers));
    cairn_buffer_push(&url->servers, 0);
    url->topic = slash + 1;
    return CAIRN_OK;
}

/* The graph, its arguments checked. */
static void build_graph(cairn_graph_t *job, const char *input, const kafka_url_t *from,
                        const char *rate, const char *output, const kafka_url_t *to) {
    cairn_graph_name(job, "word-count");
    cairn_stream_t lines;
    if (from->topic) {
        lines = cairn_source_kafka(job, "lines", (const char *)from->servers.ptr, from->topic);
        cairn_stream_option(lines, "scan.bounded.mode", "latest-offset");
    } else if (strcmp(input, "-") == 0) {
        lines = cairn_source_stdin(job, "lines");
    } else {
        lines = cairn_source_file(job, "lines", input);
        if (rate) cairn_stream_option(lines, "rate", rate);
    }
    cairn_stream_parallelism(lines, 1);
    cairn_stream_t words = cairn_stream_operator(lines, "split", "split", CAIRN_REBALANCE);
    cairn_stream_t counts = cairn_stream_operator(words, "count", "count", CAIRN_BY_KEY);
    if (to->topic)
        cairn_stream_option(cairn_sink_kafka(counts, "out", (const char *)to->servers.ptr,
                                             to->topic, CAIRN_FORWARD),
                            "sink.delivery-guarantee", "exactly-once");
    else if (strcmp(output, "-") == 0)
        cairn_sink_stdout(counts, "out", CAIRN_FORWARD);
    else
        cairn_sink_file(counts, "out", output, CAIRN_FORWARD);
}

static int describe(const cairn_args_t *args, cairn_graph_t *job) {
    const char *input = cairn_args_required(args, "--input");
    if (input == NULL) return CAIRN_ERROR;
    const char *output = cairn_args_required(args, "--output");
    if (output == NULL) return CAIRN_ERROR;
    const char *rate = cairn_args_value(args, "--rate");

    kafka_url_t from = {0}, to = {0};
    int status = parse_kafka_url("--input", input, &from);
    if (status == CAIRN_OK && from.topic && rate)
        status = cairn_error("--rate paces a file input; it does not apply to %s", input);
    if (status == CAIRN_OK) status = parse_kafka_url("--output", output, &to);
    if (status == CAIRN_OK) build_graph(job, input, &from, rate, output, &to);
    cairn_buffer_free(&from.servers);
    cairn_buffer_free(&to.servers);
    return status;
}

CAIRN_JOB(describe, &SPLIT, &COUNT);
