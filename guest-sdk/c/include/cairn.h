/*
 * cairn.h: write Cairn jobs in C.
 *
 * A job is one WebAssembly component that describes its dataflow graph and implements the
 * operators that graph names (the WIT world `cairn:job/cairn-job`). With this SDK a job is
 *
 *   - a `describe` function building the graph from the job's arguments,
 *   - one `cairn_operator_t` per operator: a size and a few callbacks,
 *   - and one `CAIRN_JOB(describe, operators)` line,
 *
 * while the WIT plumbing and the packed batch encoding stay out of sight:
 *
 *     static int upper_process(void *self, const cairn_record_t *r, cairn_emitter_t *out) {
 *         cairn_emit_begin(out, r->key.ptr, r->key.len);
 *         for (size_t i = 0; i < r->value.len; i++) {
 *             uint8_t c = r->value.ptr[i];
 *             cairn_emit_byte(out, c >= 'a' && c <= 'z' ? c - 32 : c);
 *         }
 *         cairn_emit_end(out);
 *         return CAIRN_OK;
 *     }
 *     static const cairn_operator_t UPPER = { .name = "upper", .process = upper_process };
 *
 * Conventions:
 *   - Callbacks return CAIRN_OK (0) on success. On failure they return what `cairn_error`
 *     returns: `return cairn_error("bad value %d", v);`. The message becomes the WIT `err`
 *     string the host reports (a failed `describe` is shown to the user as is).
 *   - Strings the SDK hands out (arguments, context, options) are NUL-terminated and live
 *     as long as what they belong to (arguments: the `describe` call; context: the operator
 *     instance). Strings the SDK takes are copied.
 *   - Record keys and values are byte slices (`cairn_bytes_t`), borrowed for one `process`
 *     call and not NUL-terminated.
 *   - Out of memory traps (aborts the instance), as it does in the Rust SDK.
 *
 * Event time: a node's watermark strategy (`cairn_stream_watermarks`) makes watermarks from
 * the timestamps it emits; an operator registers timers per key (`cairn_timer_register`),
 * fired through its `on_timer`; and `window` makes an operator a window operator over an
 * incremental aggregate (see "Windows" below).
 *
 * Build: compile for `wasm32-wasi` with wasi-libc, linking this SDK's cairn.c and window.c
 * and the C bindings wit-bindgen generates for wit/ (`cairn:job@0.4.0`; `cargo xtask build
 * --lang c` does all of it, see docs/guides/c.md). Use libc's memory and string functions
 * freely, but no I/O (stdio, files, clocks): the component imports nothing but Cairn's own
 * interfaces (`log`, `keys`, `timers`, `outputs`, `metrics`), so log with `cairn_log` and
 * read the clock with `cairn_current_processing_time`.
 */
#ifndef CAIRN_H
#define CAIRN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------------------------------
 * Results and errors
 * ------------------------------------------------------------------------------------- */

#define CAIRN_OK 0
#define CAIRN_ERROR (-1)

/* Sets the error message of the failing call (printf format) and returns CAIRN_ERROR. */
int cairn_error(const char *format, ...) __attribute__((__format__(__printf__, 1, 2)));

/* The same with a message of `len` bytes, not NUL-terminated. */
int cairn_error_bytes(const char *message, size_t len);

/* ---------------------------------------------------------------------------------------
 * Logging: into the host's log, tagged with the subtask that wrote it
 * ------------------------------------------------------------------------------------- */

typedef enum cairn_level {
    CAIRN_LEVEL_TRACE = 0,
    CAIRN_LEVEL_DEBUG = 1,
    CAIRN_LEVEL_INFO = 2,
    CAIRN_LEVEL_WARN = 3,
    CAIRN_LEVEL_ERROR = 4,
} cairn_level_t;

/* Logs a message (printf format). */
void cairn_log(cairn_level_t level, const char *format, ...)
    __attribute__((__format__(__printf__, 2, 3)));

/* Logs a message of `len` bytes (UTF-8, not NUL-terminated). */
void cairn_log_bytes(cairn_level_t level, const char *message, size_t len);

/* cairn_info("read %zu lines", n); at error level: cairn_log(CAIRN_LEVEL_ERROR, ...). */
#define cairn_trace(...) cairn_log(CAIRN_LEVEL_TRACE, __VA_ARGS__)
#define cairn_debug(...) cairn_log(CAIRN_LEVEL_DEBUG, __VA_ARGS__)
#define cairn_info(...) cairn_log(CAIRN_LEVEL_INFO, __VA_ARGS__)
#define cairn_warn(...) cairn_log(CAIRN_LEVEL_WARN, __VA_ARGS__)

/* ---------------------------------------------------------------------------------------
 * Bytes and growable buffers
 * ------------------------------------------------------------------------------------- */

/* Borrowed bytes. */
typedef struct cairn_bytes {
    const uint8_t *ptr;
    size_t len;
} cairn_bytes_t;

/* A growable byte buffer (a snapshot is written into one). Zero-initialise it; the fields
 * may be read, and are changed only through the functions below. */
typedef struct cairn_buffer {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} cairn_buffer_t;

/* Makes room for `extra` more bytes; returns where they go (at ptr + len). */
uint8_t *cairn_buffer_reserve(cairn_buffer_t *buf, size_t extra);

static inline void cairn_buffer_append(cairn_buffer_t *buf, const void *bytes, size_t len) {
    if (len == 0) return;
    uint8_t *to = buf->cap - buf->len >= len ? buf->ptr + buf->len
                                             : cairn_buffer_reserve(buf, len);
    __builtin_memcpy(to, bytes, len);
    buf->len += len;
}

static inline void cairn_buffer_push(cairn_buffer_t *buf, uint8_t byte) {
    if (buf->len == buf->cap) cairn_buffer_reserve(buf, 1);
    buf->ptr[buf->len++] = byte;
}

/* Appends a NUL-terminated string (without the NUL). */
void cairn_buffer_append_str(cairn_buffer_t *buf, const char *s);

/* Appends `n` in decimal. */
void cairn_buffer_append_u64(cairn_buffer_t *buf, uint64_t n);
void cairn_buffer_append_i64(cairn_buffer_t *buf, int64_t n);

/* Frees the buffer's memory and empties it. */
void cairn_buffer_free(cairn_buffer_t *buf);

/* ---------------------------------------------------------------------------------------
 * Records in, records out
 * ------------------------------------------------------------------------------------- */

/* One record of an input batch, borrowed for the `process` call. */
typedef struct cairn_record {
    /* The index of the input (in the node's inputs) the record arrived on. */
    uint32_t input;
    /* Empty: a record without a key. */
    cairn_bytes_t key;
    cairn_bytes_t value;
    bool has_timestamp;
    /* Milliseconds since the Unix epoch, when has_timestamp. */
    int64_t timestamp;
    /* Whether the record arrived on a by-key input, and then its key's key group (the
     * host's: xxh3-64 of the key mod max-parallelism). Keyed state needs it. */
    bool has_key_group;
    uint16_t key_group;
} cairn_record_t;

/* Collects the records an operator emits during one `process` (or `finish`) call into the
 * packed batch returned to the host: one growing buffer for all keys and values.
 *
 * A record is emitted whole (`cairn_emit`, `cairn_emit_keyed`, ...) or piece by piece:
 * `cairn_emit_begin(out, key, key_len)`, then any `cairn_emit_write`/`_byte`/`_u64` for the
 * value, then `cairn_emit_end(out)` — no intermediate copy. The fields are private. */
typedef struct cairn_emitter {
    cairn_buffer_t data;
    uint32_t *offsets;
    size_t offsets_len, offsets_cap;
    int64_t *timestamps;
    size_t timestamps_len, timestamps_cap;
} cairn_emitter_t;

void cairn__emitter_offset(cairn_emitter_t *out, size_t end);
void cairn__emitter_timestamp(cairn_emitter_t *out, bool has_timestamp, int64_t timestamp);

/* Starts a record with key `key` (`key_len` 0: no key); its value follows. */
static inline void cairn_emit_begin(cairn_emitter_t *out, const void *key, size_t key_len) {
    cairn_buffer_append(&out->data, key, key_len);
    cairn__emitter_offset(out, out->data.len);
}

/* Appends bytes to the value of the record begun. */
static inline void cairn_emit_write(cairn_emitter_t *out, const void *bytes, size_t len) {
    cairn_buffer_append(&out->data, bytes, len);
}

static inline void cairn_emit_byte(cairn_emitter_t *out, uint8_t byte) {
    cairn_buffer_push(&out->data, byte);
}

/* Appends `n` in decimal to the value of the record begun. */
static inline void cairn_emit_u64(cairn_emitter_t *out, uint64_t n) {
    cairn_buffer_append_u64(&out->data, n);
}

static inline void cairn_emit_i64(cairn_emitter_t *out, int64_t n) {
    cairn_buffer_append_i64(&out->data, n);
}

/* Ends the record begun, without a timestamp. */
static inline void cairn_emit_end(cairn_emitter_t *out) {
    cairn__emitter_offset(out, out->data.len);
    if (out->timestamps_len != 0) cairn__emitter_timestamp(out, false, 0);
}

/* Ends the record begun, with a timestamp (milliseconds since the Unix epoch). */
static inline void cairn_emit_end_with_timestamp(cairn_emitter_t *out, int64_t timestamp) {
    cairn__emitter_offset(out, out->data.len);
    cairn__emitter_timestamp(out, true, timestamp);
}

/* Emits a keyed record: `by-key` partitioning downstream routes on the key. */
static inline void cairn_emit_keyed(cairn_emitter_t *out, const void *key, size_t key_len,
                                    const void *value, size_t value_len) {
    cairn_emit_begin(out, key, key_len);
    cairn_emit_write(out, value, value_len);
    cairn_emit_end(out);
}

/* Emits a record without a key. */
static inline void cairn_emit(cairn_emitter_t *out, const void *value, size_t value_len) {
    cairn_emit_keyed(out, NULL, 0, value, value_len);
}

/* Emits a keyed record carrying a timestamp. */
static inline void cairn_emit_with_timestamp(cairn_emitter_t *out, const void *key,
                                             size_t key_len, const void *value,
                                             size_t value_len, int64_t timestamp) {
    cairn_emit_begin(out, key, key_len);
    cairn_emit_write(out, value, value_len);
    cairn_emit_end_with_timestamp(out, timestamp);
}

/* Copies a record, with its key and timestamp, as it is. */
static inline void cairn_emit_record(cairn_emitter_t *out, const cairn_record_t *record) {
    cairn_emit_begin(out, record->key.ptr, record->key.len);
    cairn_emit_write(out, record->value.ptr, record->value.len);
    if (record->has_timestamp)
        cairn_emit_end_with_timestamp(out, record->timestamp);
    else
        cairn_emit_end(out);
}

/* Number of records emitted so far in this call. */
static inline size_t cairn_emit_count(const cairn_emitter_t *out) {
    return out->offsets_len / 2;
}

/* Sets the timestamp of every record emitted since the `first`-th (0-based, as
 * cairn_emit_count counted them before) to `timestamp`. */
void cairn_emit_stamp(cairn_emitter_t *out, size_t first, int64_t timestamp);

/* ---------------------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------------------- */

/* The length in bytes of the Unicode whitespace character (White_Space property, as Rust's
 * `char::is_whitespace`) that `text` (valid UTF-8, `len` bytes) starts with, or 0 when it
 * does not start with one. */
size_t cairn_whitespace_len(const uint8_t *text, size_t len);

/* Splits UTF-8 text on Unicode whitespace (as Rust's `str::split_whitespace`): each call
 * sets `*word` to the next non-empty word and returns true, or returns false at the end.
 * `*pos` is where to go on from: start with 0. */
bool cairn_next_word(cairn_bytes_t text, size_t *pos, cairn_bytes_t *word);

/* ---------------------------------------------------------------------------------------
 * Keyed state: a value per key, as Flink's ValueState
 *
 * An operator that sets `keyed_values` (the codec of its values) gets one keyed state,
 * `ctx->keyed_state`, that the SDK keeps per key group and checkpoints: the host stores it
 * by key group, so the job can change parallelism across a restore, and `cairn state` shows
 * it. Records of a by-key input address their key's value:
 *
 *     uint64_t *n;
 *     if (cairn_keyed_get_or_insert(c->counts, record, (void **)&n) != CAIRN_OK)
 *         return CAIRN_ERROR;
 *     ++*n;
 *
 * Values live in the state, `codec->size` bytes each, and pointers to them are valid until
 * the next insertion or removal. Keys are copied.
 * ------------------------------------------------------------------------------------- */

/* How keyed state values are encoded in a checkpoint, so that tools can show them. */
typedef enum cairn_value_encoding {
    /* Opaque bytes (shown as UTF-8 when they are, else as hex). */
    CAIRN_ENCODING_BYTES = 0,
    CAIRN_ENCODING_UTF8 = 1,
    /* 8 bytes little-endian. */
    CAIRN_ENCODING_U64_LE = 2,
    CAIRN_ENCODING_S64_LE = 3,
    CAIRN_ENCODING_F64_LE = 4,
    /* A UTF-8 JSON document. */
    CAIRN_ENCODING_JSON = 5,
} cairn_value_encoding_t;

/* A type of value kept in keyed state: its size in memory, and how it is encoded. A new
 * value is `size` zero bytes. Write one for a type of your own. */
typedef struct cairn_value_codec {
    cairn_value_encoding_t encoding;
    size_t size;
    /* Appends the encoding of `*value` to `out`. */
    void (*encode)(const void *value, cairn_buffer_t *out);
    /* Sets `*value` (zeroed) from an encoding of `len` bytes; returns CAIRN_OK, or
     * cairn_error(...) for bytes that are not one. */
    int (*decode)(const uint8_t *bytes, size_t len, void *value);
    /* Frees what a value owns; NULL: nothing. */
    void (*drop)(void *value);
} cairn_value_codec_t;

/* uint64_t, int64_t and double, 8 bytes little-endian. */
extern const cairn_value_codec_t cairn_codec_u64;
extern const cairn_value_codec_t cairn_codec_s64;
extern const cairn_value_codec_t cairn_codec_f64;
/* A cairn_buffer_t the state owns (it frees it with the value), holding bytes, UTF-8 text
 * or a JSON document: the encoding is what tools show; the bytes are not checked. */
extern const cairn_value_codec_t cairn_codec_bytes;
extern const cairn_value_codec_t cairn_codec_utf8;
extern const cairn_value_codec_t cairn_codec_json;

typedef struct cairn_keyed_state cairn_keyed_state_t;

/* These fail (return CAIRN_ERROR, the message set) for a record that did not arrive on a
 * by-key input, or a key not in this subtask's key groups. */

/* Sets `*value` to the value of the record's key, or NULL when it has none. */
int cairn_keyed_get(cairn_keyed_state_t *state, const cairn_record_t *record, void **value);

/* Sets `*value` to the value of the record's key, inserted (zeroed) when it has none: one
 * lookup. */
int cairn_keyed_get_or_insert(cairn_keyed_state_t *state, const cairn_record_t *record,
                              void **value);

/* Sets the value of the record's key to a copy of the `codec->size` bytes at `value` (which
 * the state owns from now on; an older value is dropped). */
int cairn_keyed_put(cairn_keyed_state_t *state, const cairn_record_t *record, const void *value);

/* Removes the record's key and drops its value, if it has one. */
int cairn_keyed_remove(cairn_keyed_state_t *state, const cairn_record_t *record);

/* Sets the value of `key`, whose key group (the host's `keys.key-group`) must be this
 * subtask's: for migrating state an older encoding kept otherwise into keyed state. */
int cairn_keyed_put_key(cairn_keyed_state_t *state, const void *key, size_t key_len,
                        const void *value);

/* The number of keys. */
size_t cairn_keyed_count(const cairn_keyed_state_t *state);

/* Iterates over every key and its value, key group by key group, in no order within one:
 *
 *     cairn_keyed_iter_t it = {0};
 *     cairn_bytes_t key;
 *     uint64_t *n;
 *     while (cairn_keyed_next(state, &it, &key, (void **)&n)) ...
 *
 * The state must not change meanwhile. */
typedef struct cairn_keyed_iter {
    size_t group, slot;
} cairn_keyed_iter_t;

bool cairn_keyed_next(const cairn_keyed_state_t *state, cairn_keyed_iter_t *it,
                      cairn_bytes_t *key, void **value);

/* The keyed state of one key group, as a snapshot wrote it: `entries` in the chunk encoding
 * of cairn:job/types.keyed-chunk (wit/cairn-job.wit). */
typedef struct cairn_keyed_chunk {
    uint16_t key_group;
    cairn_bytes_t entries;
} cairn_keyed_chunk_t;

/* Adds a chunk written in this state's own encoding (its codec's) to the state. */
int cairn_keyed_restore_chunk(cairn_keyed_state_t *state, const cairn_keyed_chunk_t *chunk);

/* One entry of a chunk. */
typedef struct cairn_chunk_entry {
    cairn_bytes_t key;
    /* A tombstone (the key was deleted) has no value. */
    bool tombstone;
    cairn_bytes_t value;
} cairn_chunk_entry_t;

/* Reads a chunk's entries one by one (to migrate chunks of another encoding):
 *
 *     size_t pos = 0;
 *     cairn_chunk_entry_t entry;
 *     int more;
 *     while ((more = cairn_chunk_next(chunk->entries, &pos, &entry)) == 1) ...
 *     if (more != 0) return CAIRN_ERROR;
 *
 * Returns 1 with the next entry, 0 at the end, or CAIRN_ERROR (the message set) when the
 * bytes are not in the chunk encoding. */
int cairn_chunk_next(cairn_bytes_t entries, size_t *pos, cairn_chunk_entry_t *entry);

/* Appends an entry, or a tombstone, in the chunk encoding. */
void cairn_chunk_put(cairn_buffer_t *entries, const void *key, size_t key_len, const void *value,
                     size_t value_len);
void cairn_chunk_put_tombstone(cairn_buffer_t *entries, const void *key, size_t key_len);

/* ---------------------------------------------------------------------------------------
 * Event time: timers and clocks (Flink's TimerService), during `process`, `on_timer` and
 * `finish`
 *
 * A timer is a key, a domain and a timestamp (ms); registering one that exists does
 * nothing. The operator's `on_timer` gets it once its domain's time reaches the timestamp:
 * for event time, once the operator's input watermark is at or past it. The host
 * checkpoints timers with the keyed state of their key's key group, so they move with it
 * when the parallelism changes.
 * ------------------------------------------------------------------------------------- */

typedef enum cairn_time_domain {
    /* The operator's input watermark: the lowest over its inputs' (idle ones aside). */
    CAIRN_EVENT_TIME = 0,
    /* The wall clock, milliseconds since the Unix epoch. */
    CAIRN_PROCESSING_TIME = 1,
} cairn_time_domain_t;

/* Registers a timer for `key` at `timestamp`. `key` must be in this subtask's key groups
 * (the key of a record from a by-key input): else CAIRN_ERROR, with the host's reason. */
int cairn_timer_register(cairn_time_domain_t domain, const void *key, size_t key_len,
                         int64_t timestamp);

/* Deletes the timer of `key` at `timestamp`, if there is one. */
void cairn_timer_delete(cairn_time_domain_t domain, const void *key, size_t key_len,
                        int64_t timestamp);

/* The operator's input watermark (ms): INT64_MIN before the first, INT64_MAX once every
 * input has ended. */
int64_t cairn_current_watermark(void);

/* The wall clock (ms since the Unix epoch). */
int64_t cairn_current_processing_time(void);

/* ---------------------------------------------------------------------------------------
 * Counters: an operator's own metrics, per subtask, in `/metrics` and Flink's vertex metrics
 * ------------------------------------------------------------------------------------- */

/* Adds `delta` to this subtask's counter `name` (1 to 64 ASCII letters, digits or `_`;
 * another name fails the call). During `process`, `on_timer` and `finish`. */
void cairn_counter_add(const char *name, uint64_t delta);

/* Flink's counter of records a window operator dropped for being late. */
#define CAIRN_LATE_RECORDS_DROPPED "numLateRecordsDropped"

/* ---------------------------------------------------------------------------------------
 * Side outputs (Flink's OutputTag): records an operator sends besides those it emits to
 * `out`, to the nodes whose input reads side output `name` (cairn_stream_side_output)
 * ------------------------------------------------------------------------------------- */

/* The emitter of side output `name` (1 to 64 characters) for the current `process`,
 * `on_timer` or `finish` call: what is emitted to it goes to the host as one batch at the end
 * of the call (and is forgotten if the call fails). No node reading it: nobody gets it. */
cairn_emitter_t *cairn_side_output(const char *name);

/* ---------------------------------------------------------------------------------------
 * Windows over event time: Flink's WindowOperator with its EventTimeTrigger, for an
 * incremental aggregate per key and window
 *
 * An operator whose `window` is set is a window operator over that aggregate, on a by-key
 * input whose records carry timestamps (and whose upstream makes watermarks):
 *
 *   - each record goes to its windows (tumbling, sliding, or a session window merged with
 *     the key's windows it meets) and is added to each one's accumulator: a window keeps one
 *     accumulator per key, never the records;
 *   - a window fires (`emit`, every record it emits stamped with the window's last
 *     millisecond) once the watermark passes its end, by an event-time timer per key and
 *     window end;
 *   - with `allowed_lateness`, a window's state is kept that much longer and each record
 *     arriving within it fires the window again at once, updated; then the state is freed;
 *   - a record all of whose windows are past that is late: dropped and counted in the
 *     subtask's counter `numLateRecordsDropped`, or sent to side output `late_output`.
 *
 * The SDK keeps, per key, the list of its open windows and their accumulators in the
 * operator's keyed state (checkpointed per key group beside the timers, so windows rescale;
 * shown by `cairn state` as bytes): after the tag `CWP1`, per window its start and end (s64)
 * and `acc_size` bytes of its accumulator as they lie in memory (little-endian, as on
 * wasm32), padded to 8 bytes.
 *
 *     static int count_add(void *acc, const cairn_record_t *r) { ++*(uint64_t *)acc; ... }
 *     static const cairn_aggregate_t COUNT = {.acc_size = sizeof(uint64_t), ...};
 *     static const cairn_operator_t WINDOWED = {.name = "count", .window = &COUNT};
 * ------------------------------------------------------------------------------------- */

struct cairn_context; /* cairn_context_t, below */

/* A window of event time: `start` included, `end` excluded, in ms. Its last millisecond,
 * `end - 1`, is when it fires and the timestamp of its results. */
typedef struct cairn_window {
    int64_t start, end;
} cairn_window_t;

/* The kinds of windows. */
typedef enum cairn_window_kind {
    /* Windows of `size` ms starting every `slide` ms at multiples of `slide` (from the
     * epoch); `slide == size`: tumbling windows. */
    CAIRN_WINDOWS_SLIDING = 0,
    /* A window per burst of records less than `size` ms apart (the gap): each record's
     * window [t, t + gap) merges with every window of its key it overlaps or touches. */
    CAIRN_WINDOWS_SESSION = 1,
} cairn_window_kind_t;

/* How records are put into windows. Set it with cairn_windows_tumbling,
 * cairn_windows_sliding or cairn_windows_session, then `allowed_lateness` and
 * `late_output`. */
typedef struct cairn_windows {
    cairn_window_kind_t kind;
    int64_t size;
    int64_t slide;
    /* Flink's allowedLateness, ms: how long past its end a window's state is kept (and it
     * fires again for each record arriving meanwhile). Default 0. */
    int64_t allowed_lateness;
    /* Flink's sideOutputLateData: the side output late records go to as they came, instead
     * of being dropped and counted; NULL (the default): dropped. It must live as long as the
     * operator (a literal, or a context option). */
    const char *late_output;
} cairn_windows_t;

/* Flink's TumblingEventTimeWindows.of(size): [t - t mod size, ... + size). CAIRN_ERROR for
 * a size of 0 or over INT64_MAX. */
int cairn_windows_tumbling(cairn_windows_t *windows, uint64_t size_ms);

/* Flink's SlidingEventTimeWindows.of(size, slide): a record is in size / slide windows.
 * CAIRN_ERROR for a slide longer than the size, or either 0. */
int cairn_windows_sliding(cairn_windows_t *windows, uint64_t size_ms, uint64_t slide_ms);

/* Flink's EventTimeSessionWindows.withGap(gap): needs the aggregate's `merge`. CAIRN_ERROR
 * for a gap of 0. */
int cairn_windows_session(cairn_windows_t *windows, uint64_t gap_ms);

/* An aggregate per key and window, computed incrementally (Flink's AggregateFunction with a
 * ProcessWindowFunction for the result). */
typedef struct cairn_aggregate {
    /* Bytes of an accumulator: plain data (no pointers), zeroed for a new window. */
    size_t acc_size;
    /* Sets the windows, from the operator's context (its node's options, set in
     * `describe`): cairn_windows_tumbling(windows, ...) and so on. */
    int (*windows)(const struct cairn_context *ctx, cairn_windows_t *windows);
    /* Adds a record to a window's accumulator. */
    int (*add)(void *acc, const cairn_record_t *record);
    /* Merges accumulator `other` into `acc` when session windows merge. NULL: the aggregate
     * takes no session windows. */
    int (*merge)(void *acc, const void *other);
    /* Emits the result of `window` for `key` (its records get the window's last
     * millisecond as their timestamp). */
    int (*emit)(cairn_bytes_t key, cairn_window_t window, const void *acc, cairn_emitter_t *out);
} cairn_aggregate_t;

/* ---------------------------------------------------------------------------------------
 * Operators
 * ------------------------------------------------------------------------------------- */

/* One option of a node: `key` = `value`. */
typedef struct cairn_option {
    const char *key;
    const char *value;
} cairn_option_t;

/* Where an operator instance runs. Lives as long as the instance. */
typedef struct cairn_context {
    /* 32 lowercase hex characters. */
    const char *job_id;
    const char *operator_uid;
    /* 0-based index of this subtask among the node's subtasks. */
    uint32_t subtask;
    uint32_t parallelism;
    /* 0 on the first run; counts up on every restart of the job. */
    uint32_t attempt;
    /* The options of this operator's node, as the graph set them. */
    const cairn_option_t *options;
    size_t options_len;
    /* The number of key groups (`pipeline.max-parallelism`), fixed for the life of a job. */
    uint32_t max_parallelism;
    /* The key groups this subtask owns, both included. */
    uint32_t key_group_first, key_group_last;
    /* The operator's keyed state, when its `keyed_values` is set; else NULL. */
    cairn_keyed_state_t *keyed_state;
} cairn_context_t;

/* The value of option `name` of this operator's node (the last one set wins), or NULL. */
const char *cairn_context_option(const cairn_context_t *ctx, const char *name);

/* The value of option `name` as an unsigned integer, `fallback` when absent; CAIRN_ERROR
 * (with a message naming the option) when it is not a number. */
int cairn_context_option_u64(const cairn_context_t *ctx, const char *name, uint64_t fallback,
                             uint64_t *value);

/* How operator-wide state is shared out when the parallelism changes. */
typedef enum cairn_operator_state_mode {
    /* The old subtasks' items, in subtask order, split into runs, one per new subtask (some
     * may get none, others several). */
    CAIRN_STATE_SPLIT = 0,
    /* Every new subtask gets every old subtask's item. */
    CAIRN_STATE_UNION = 1,
} cairn_operator_state_mode_t;

/* An operator: its name in the graph, the size of its state struct, and callbacks.
 *
 * Its state has two parts, under one `state_version`:
 *   - keyed state, a value per key (see "Keyed state" above): set `keyed_values`;
 *   - operator-wide state, small and not per key: what `snapshot` writes, one item per
 *     subtask, shared out by `operator_state_mode` when the parallelism changes.
 *
 * For every subtask the SDK allocates `size` zeroed bytes (`self`) and calls, all from
 * one thread, in order:
 *
 *   open                 once, first (the context lives as long as the instance)
 *   restore_keyed        if the job resumes from a checkpoint or savepoint: once per chunk
 *                        of keyed state (by default it goes into the keyed state)
 *   restore              then once per item of operator-wide state (zero or more)
 *   restored             then once: the restore is complete
 *   process              for every record
 *   on_timer             for every timer it registered, once its time has come
 *   snapshot             when a checkpoint is taken
 *   checkpoint_complete  when a checkpoint is durable everywhere
 *   finish               when all inputs have ended (bounded input) and every event-time
 *                        timer has fired
 *   close                when the instance goes away: free what `self` owns
 *
 * Every callback but `process` may be NULL (nothing to do).
 *
 * A window operator sets `name`, `window` and at most `state_version`: the SDK implements
 * the rest (see "Windows" above). */
typedef struct cairn_operator {
    /* The name the graph gives it (`cairn_stream_operator`'s `name`). */
    const char *name;
    /* Bytes of `self`, zeroed before `open`. 0: no state struct (`self` is NULL). */
    size_t size;
    /* The version of the state encoding (both parts; 0 means 1). Raise it when an encoding
     * changes, and teach `restore_keyed` and `restore` to read the older versions. */
    uint32_t state_version;
    /* false (the default): the SDK refuses state of any version other than `state_version`,
     * naming both, before a callback sees it. true: `restore_keyed` and `restore` get every
     * version, to migrate the older ones (and refuse the rest themselves). */
    bool restores_other_versions;
    /* The codec of the keyed state's values (&cairn_codec_u64, ...): the SDK then keeps a
     * keyed state for the operator, `ctx->keyed_state`. NULL: no keyed state. */
    const cairn_value_codec_t *keyed_values;
    /* CAIRN_STATE_SPLIT (the default) or CAIRN_STATE_UNION. */
    cairn_operator_state_mode_t operator_state_mode;

    int (*open)(void *self, const cairn_context_t *ctx);
    /* Processes one record, emitting any number of records to `out`. */
    int (*process)(void *self, const cairn_record_t *record, cairn_emitter_t *out);
    /* A timer this operator registered fired: `timer` is a record of its key, no value, its
     * timestamp (has_timestamp set) and its key's key group, so that keyed state reaches the
     * key's value as for a record of a by-key input. Emits any number of records to `out`.
     * NULL: the operator registers no timers. */
    int (*on_timer)(void *self, cairn_time_domain_t domain, const cairn_record_t *timer,
                    cairn_emitter_t *out);
    /* All inputs have ended: emit any last records. */
    int (*finish)(void *self, cairn_emitter_t *out);
    /* Appends the operator-wide state to `state` (empty: none). The keyed state is
     * snapshotted by the SDK. NULL: no operator-wide state. */
    int (*snapshot)(void *self, cairn_buffer_t *state);
    /* Restores one chunk of keyed state, written in encoding `version`; to migrate chunks of
     * an older version (cairn_chunk_next, cairn_keyed_put_key). NULL: chunks of
     * `state_version` go into the keyed state (cairn_keyed_restore_chunk), others are
     * refused. */
    int (*restore_keyed)(void *self, const cairn_keyed_chunk_t *chunk, uint32_t version);
    /* Restores one item of operator-wide state (`len` bytes, borrowed for the call), written
     * by a `snapshot` — possibly of other code, in encoding `version`. */
    int (*restore)(void *self, const uint8_t *data, size_t len, uint32_t version);
    /* The restore is complete (every chunk and item restored): to report a migration. */
    int (*restored)(void *self);
    void (*checkpoint_complete)(void *self, uint64_t checkpoint_id);
    void (*close)(void *self);
    /* Makes this a window operator over the aggregate (see "Windows" above); NULL: not. */
    const cairn_aggregate_t *window;
} cairn_operator_t;

/* ---------------------------------------------------------------------------------------
 * Arguments: everything after `--` on `cairn run`
 * ------------------------------------------------------------------------------------- */

typedef struct cairn_args {
    /* NUL-terminated, as given. */
    const char *const *argv;
    size_t len;
} cairn_args_t;

/* The value of option `name` (for example "--input"), given as `--input VALUE` or
 * `--input=VALUE`, or NULL when absent. The last one wins. */
const char *cairn_args_value(const cairn_args_t *args, const char *name);

/* Whether flag `name` (for example "--verbose") is among the arguments. */
bool cairn_args_flag(const cairn_args_t *args, const char *name);

/* The value of a required option; NULL (with the error "missing required argument NAME"
 * set, so `return CAIRN_ERROR;` reports it) when absent. */
const char *cairn_args_required(const cairn_args_t *args, const char *name);

/* The value of option `name` as an unsigned integer, `fallback` when absent; returns
 * CAIRN_ERROR (with a message naming the option) when it is not a number. */
int cairn_args_u64(const cairn_args_t *args, const char *name, uint64_t fallback,
                   uint64_t *value);

/* ---------------------------------------------------------------------------------------
 * The job graph
 * ------------------------------------------------------------------------------------- */

/* How records travel from an upstream node's subtasks to a downstream node's subtasks. */
typedef enum cairn_partitioning {
    /* Subtask i to subtask i; both sides need the same parallelism. */
    CAIRN_FORWARD = 0,
    /* Round-robin, batch by batch. */
    CAIRN_REBALANCE = 1,
    /* By hash of the record key. */
    CAIRN_BY_KEY = 2,
    /* Every record to every downstream subtask. */
    CAIRN_BROADCAST = 3,
} cairn_partitioning_t;

/* The graph `describe` builds. */
typedef struct cairn_graph cairn_graph_t;

/* A node of the graph, to chain further nodes onto (valid while the graph is): its records,
 * or those of its side output `side_output`. */
typedef struct cairn_stream {
    cairn_graph_t *graph;
    size_t index;
    /* NULL: the node's records; else the name of the side output. */
    const char *side_output;
} cairn_stream_t;

/* Names the job (required). */
void cairn_graph_name(cairn_graph_t *graph, const char *name);

/* Sets a configuration key in code (Flink names, for example
 * "execution.checkpointing.interval"). Overrides the config file; `-D` overrides it. */
void cairn_graph_config(cairn_graph_t *graph, const char *key, const char *value);

/* Adds a source node reading host connector `connector` ("file", "generator", "stdin",
 * "kafka"). */
cairn_stream_t cairn_graph_source(cairn_graph_t *graph, const char *uid, const char *connector);

/* A file source: lines of UTF-8 text file `path`, one record per line. */
cairn_stream_t cairn_source_file(cairn_graph_t *graph, const char *uid, const char *path);

/* The host's standard input, line by line (not replayable). */
cairn_stream_t cairn_source_stdin(cairn_graph_t *graph, const char *uid);

/* The messages of Kafka topic `topic` (each one's key and value), with the option names of
 * Flink's Kafka SQL connector: `bootstrap_servers` is "properties.bootstrap.servers"
 * ("host:port", comma-separated). Other options, set with cairn_stream_option:
 * "scan.startup.mode" ("earliest-offset" (default), "latest-offset", "group-offsets",
 * "timestamp", "specific-offsets"), "scan.bounded.mode" ("unbounded" (default),
 * "latest-offset", "group-offsets", "timestamp", "specific-offsets"), "properties.group.id",
 * and any other Kafka consumer property as "properties.*". */
cairn_stream_t cairn_source_kafka(cairn_graph_t *graph, const char *uid,
                                  const char *bootstrap_servers, const char *topic);

/* Adds operator `name` (a `cairn_operator_t.name` of this job) reading `upstream`. */
cairn_stream_t cairn_stream_operator(cairn_stream_t upstream, const char *uid, const char *name,
                                     cairn_partitioning_t partitioning);

/* Adds a sink node writing to host connector `connector` ("file", "stdout", "blackhole",
 * "kafka"), reading `upstream`. */
cairn_stream_t cairn_stream_sink(cairn_stream_t upstream, const char *uid, const char *connector,
                                 cairn_partitioning_t partitioning);

/* A file sink: part files in directory `dir`, one series per sink subtask. */
cairn_stream_t cairn_sink_file(cairn_stream_t upstream, const char *uid, const char *dir,
                               cairn_partitioning_t partitioning);

/* The host's standard output. */
cairn_stream_t cairn_sink_stdout(cairn_stream_t upstream, const char *uid,
                                 cairn_partitioning_t partitioning);

/* Messages (each record's key and value) into Kafka topic `topic`, with the option names of
 * Flink's Kafka SQL connector: `bootstrap_servers` is "properties.bootstrap.servers"
 * ("host:port", comma-separated). Other options, set with cairn_stream_option:
 * "sink.delivery-guarantee" ("at-least-once" (default, as Flink's), "exactly-once", "none"),
 * "sink.transactional-id-prefix", and any other Kafka producer property as "properties.*". */
cairn_stream_t cairn_sink_kafka(cairn_stream_t upstream, const char *uid,
                                const char *bootstrap_servers, const char *topic,
                                cairn_partitioning_t partitioning);

/* Adds one more input to a node (for graphs that are not a straight pipeline, such as
 * joins: the operator sees it as input index 1, 2, ...). */
cairn_stream_t cairn_stream_input(cairn_stream_t node, cairn_stream_t upstream,
                                  cairn_partitioning_t partitioning);

/* The records `node` (an operator) emits to its side output `name` (cairn_side_output), as
 * a stream to chain nodes onto: an input reading it gets them, and none of the node's other
 * records. `name` is copied when an input reads it. */
cairn_stream_t cairn_stream_side_output(cairn_stream_t node, const char *name);

/* Sets the node's parallelism (default: the job's default parallelism). */
cairn_stream_t cairn_stream_parallelism(cairn_stream_t node, uint32_t parallelism);

/* Sets an option on the node (a connector's setting, or an operator's own, handed to it in
 * its context). */
cairn_stream_t cairn_stream_option(cairn_stream_t node, const char *key, const char *value);

/* Gives the node (a source or an operator) a watermark strategy (Flink's
 * WatermarkStrategy.forBoundedOutOfOrderness): the host makes watermarks from the
 * timestamps it emits, the highest so far minus `max_out_of_orderness_ms` minus 1 (0:
 * forMonotonousTimestamps). A record further behind is late. Without one a node passes on
 * the watermarks it receives (a source: none until its input ends). */
cairn_stream_t cairn_stream_watermarks(cairn_stream_t node, uint64_t max_out_of_orderness_ms);

/* Flink's withIdleness: a subtask of the node that emitted nothing for `idle_timeout_ms` is
 * idle, and downstream watermarks stop waiting for it until it emits again. Sets the node's
 * watermark strategy too (bounded out-of-orderness 0) when cairn_stream_watermarks did not. */
cairn_stream_t cairn_stream_idleness(cairn_stream_t node, uint64_t idle_timeout_ms);

/* ---------------------------------------------------------------------------------------
 * The job
 * ------------------------------------------------------------------------------------- */

typedef struct cairn_job {
    /* Builds the graph for these arguments; an error is shown to the user. */
    int (*describe)(const cairn_args_t *args, cairn_graph_t *graph);
    /* The operators the graph names, NULL-terminated. */
    const cairn_operator_t *const *operators;
} cairn_job_t;

/* The job this component exports; defined once per job by CAIRN_JOB. */
extern const cairn_job_t cairn_job;

/* Exports the job: `CAIRN_JOB(describe, &SPLIT, &COUNT);` at file scope, once. */
#define CAIRN_JOB(describe_fn, ...)                                                       \
    static const cairn_operator_t *const cairn__operators[] = {__VA_ARGS__, NULL};       \
    const cairn_job_t cairn_job = {.describe = (describe_fn), .operators = cairn__operators}

#ifdef __cplusplus
}
#endif

#endif /* CAIRN_H */
