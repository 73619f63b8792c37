/*
 * Word count in C: the same job as the Rust `word-count` — same arguments, graph and
 * output (`word<TAB>n` for the n-th occurrence of each word) — with the `count` state in
 * encoding version 2 of `word-count-v2`, so that C, Zig and Rust word counts resume from
 * each other's checkpoints and savepoints.
 *
 *   cairn run word-count-c.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
 *
 * (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
 * paces reading the file.)
 *
 * The `count` state, version 2: UTF-8 text, one `word<TAB>count<LF>` line per word, sorted
 * by word bytewise. Words never contain whitespace, so the format needs no escaping.
 */
#include <stdlib.h>
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
 * count: a hash map word -> count, emitting the running count
 * ------------------------------------------------------------------------------------- */

typedef struct entry {
    uint64_t hash;
    uint64_t count;
    /* The word is words.ptr[offset .. offset + len]. */
    uint32_t offset;
    uint32_t len; /* 0: a free slot (words are never empty) */
} entry_t;

typedef struct count {
    entry_t *slots; /* open addressing, linear probing; a power of two of them */
    size_t mask;    /* slots - 1 */
    size_t used;
    cairn_buffer_t words; /* every word once, back to back */
} count_t;

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    while (n >= 8) {
        uint64_t chunk;
        memcpy(&chunk, p, 8);
        h = (h ^ chunk) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t tail = 0;
    memcpy(&tail, p, n);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
}

static void grow(count_t *c) {
    size_t slots = c->slots ? (c->mask + 1) * 2 : 1024;
    entry_t *fresh = calloc(slots, sizeof *fresh);
    if (fresh == NULL) abort();
    for (size_t i = 0; c->slots && i <= c->mask; i++) {
        entry_t *e = &c->slots[i];
        if (e->len == 0) continue;
        size_t j = e->hash & (slots - 1);
        while (fresh[j].len) j = (j + 1) & (slots - 1);
        fresh[j] = *e;
    }
    free(c->slots);
    c->slots = fresh;
    c->mask = slots - 1;
}

/* The entry of `word`, added with count 0 if new. */
static entry_t *lookup(count_t *c, const uint8_t *word, size_t len) {
    if (c->slots == NULL || (c->used + 1) * 4 > (c->mask + 1) * 3) grow(c);
    uint64_t h = hash_bytes(word, len);
    size_t i = h & c->mask;
    for (;;) {
        entry_t *e = &c->slots[i];
        if (e->len == 0) {
            e->hash = h;
            e->count = 0;
            e->offset = (uint32_t)c->words.len;
            e->len = (uint32_t)len;
            cairn_buffer_append(&c->words, word, len);
            c->used++;
            return e;
        }
        if (e->hash == h && e->len == len && memcmp(c->words.ptr + e->offset, word, len) == 0)
            return e;
        i = (i + 1) & c->mask;
    }
}

static void count_clear(count_t *c) {
    free(c->slots);
    cairn_buffer_free(&c->words);
    *c = (count_t){0};
}

static int count_process(void *self, const cairn_record_t *record, cairn_emitter_t *out) {
    count_t *c = self;
    if (record->key.len == 0) return cairn_error("count: a record without a key (a word)");
    entry_t *e = lookup(c, record->key.ptr, record->key.len);
    e->count++;
    cairn_emit_begin(out, NULL, 0);
    cairn_emit_write(out, record->key.ptr, record->key.len);
    cairn_emit_byte(out, '\t');
    cairn_emit_u64(out, e->count);
    cairn_emit_end(out);
    return CAIRN_OK;
}

/* qsort's comparison needs the words: the map being sorted. */
static const uint8_t *sorting_words;

static int by_word(const void *a, const void *b) {
    const entry_t *x = *(entry_t *const *)a, *y = *(entry_t *const *)b;
    size_t n = x->len < y->len ? x->len : y->len;
    int order = memcmp(sorting_words + x->offset, sorting_words + y->offset, n);
    if (order) return order;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int count_snapshot(void *self, cairn_buffer_t *state) {
    count_t *c = self;
    if (c->used == 0) return CAIRN_OK;
    entry_t **sorted = malloc(c->used * sizeof *sorted);
    if (sorted == NULL) abort();
    size_t n = 0;
    for (size_t i = 0; i <= c->mask; i++)
        if (c->slots[i].len) sorted[n++] = &c->slots[i];
    sorting_words = c->words.ptr;
    qsort(sorted, n, sizeof *sorted, by_word);
    for (size_t i = 0; i < n; i++) {
        cairn_buffer_append(state, c->words.ptr + sorted[i]->offset, sorted[i]->len);
        cairn_buffer_push(state, '\t');
        cairn_buffer_append_u64(state, sorted[i]->count);
        cairn_buffer_push(state, '\n');
    }
    free(sorted);
    return CAIRN_OK;
}

static int count_restore(void *self, const uint8_t *data, size_t len, uint32_t version) {
    count_t *c = self;
    (void)version; /* the SDK hands over version 2 only (state_version) */
    count_clear(c);
    size_t pos = 0, line_no = 0;
    while (pos < len) {
        line_no++;
        const uint8_t *line = data + pos;
        const uint8_t *end = memchr(line, '\n', len - pos);
        size_t line_len = end ? (size_t)(end - line) : len - pos;
        pos += line_len + (end != NULL);
        const uint8_t *tab = memchr(line, '\t', line_len);
        if (tab == NULL || tab == line)
            return cairn_error("version 2 state: line %zu is not word<TAB>count", line_no);
        size_t word_len = (size_t)(tab - line);
        uint64_t n = 0;
        size_t digits = line_len - word_len - 1;
        if (digits == 0 || digits > 19)
            return cairn_error("version 2 state: bad count in line %zu", line_no);
        for (size_t i = 0; i < digits; i++) {
            uint8_t d = tab[1 + i];
            if (d < '0' || d > '9')
                return cairn_error("version 2 state: bad count in line %zu", line_no);
            n = n * 10 + (d - '0');
        }
        lookup(c, line, word_len)->count = n;
    }
    return CAIRN_OK;
}

static void count_close(void *self) { count_clear(self); }

static const cairn_operator_t COUNT = {
    .name = "count",
    .size = sizeof(count_t),
    .state_version = 2,
    .process = count_process,
    .snapshot = count_snapshot,
    .restore = count_restore,
    .close = count_close,
};

/* ---------------------------------------------------------------------------------------
 * The graph
 * ------------------------------------------------------------------------------------- */

static int describe(const cairn_args_t *args, cairn_graph_t *job) {
    const char *input = cairn_args_required(args, "--input");
    if (input == NULL) return CAIRN_ERROR;
    const char *output = cairn_args_required(args, "--output");
    if (output == NULL) return CAIRN_ERROR;
    const char *rate = cairn_args_value(args, "--rate");

    cairn_graph_name(job, "word-count");
    cairn_stream_t lines;
    if (strcmp(input, "-") == 0) {
        lines = cairn_source_stdin(job, "lines");
    } else {
        lines = cairn_source_file(job, "lines", input);
        if (rate) cairn_stream_option(lines, "rate", rate);
    }
    cairn_stream_parallelism(lines, 1);
    cairn_stream_t words = cairn_stream_operator(lines, "split", "split", CAIRN_REBALANCE);
    cairn_stream_t counts = cairn_stream_operator(words, "count", "count", CAIRN_BY_KEY);
    if (strcmp(output, "-") == 0)
        cairn_sink_stdout(counts, "out", CAIRN_FORWARD);
    else
        cairn_sink_file(counts, "out", output, CAIRN_FORWARD);
    return CAIRN_OK;
}

CAIRN_JOB(describe, &SPLIT, &COUNT);
