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
 * Build: compile for `wasm32-wasi` with wasi-libc, linking this SDK's cairn.c and the C
 * bindings wit-bindgen generates for wit/ (`cargo xtask build --lang c` does all of it, see
 * docs/guides/c.md). Use libc's memory and string functions freely, but no I/O (stdio,
 * files, clocks): the component imports nothing but `cairn:job/log`, so log with
 * `cairn_log`.
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
} cairn_context_t;

/* The value of option `name` of this operator's node (the last one set wins), or NULL. */
const char *cairn_context_option(const cairn_context_t *ctx, const char *name);

/* An operator: its name in the graph, the size of its state struct, and callbacks.
 *
 * For every subtask the SDK allocates `size` zeroed bytes (`self`) and calls, all from
 * one thread, in order:
 *
 *   open                 once, first (the context lives as long as the instance)
 *   restore              if the job resumes from a checkpoint or savepoint, before any record
 *   process              for every record
 *   snapshot             when a checkpoint is taken
 *   checkpoint_complete  when a checkpoint is durable everywhere
 *   finish               when all inputs have ended (bounded input)
 *   close                when the instance goes away: free what `self` owns
 *
 * Every callback but `process` may be NULL (nothing to do). */
typedef struct cairn_operator {
    /* The name the graph gives it (`cairn_stream_operator`'s `name`). */
    const char *name;
    /* Bytes of `self`, zeroed before `open`. 0: no state struct (`self` is NULL). */
    size_t size;
    /* The version of the state encoding `snapshot` writes (0 means 1). Raise it when the
     * encoding changes, and teach `restore` to read the older versions. */
    uint32_t state_version;
    /* false (the default): the SDK refuses state of any version other than `state_version`,
     * naming both, before `restore` sees it. true: `restore` gets every version, to migrate
     * the older ones (and refuse the rest itself). */
    bool restores_other_versions;

    int (*open)(void *self, const cairn_context_t *ctx);
    /* Processes one record, emitting any number of records to `out`. */
    int (*process)(void *self, const cairn_record_t *record, cairn_emitter_t *out);
    /* All inputs have ended: emit any last records. */
    int (*finish)(void *self, cairn_emitter_t *out);
    /* Appends the whole state to `state` (empty buffer: no state, nothing is stored and
     * restore is not called). NULL: the operator keeps no state. */
    int (*snapshot)(void *self, cairn_buffer_t *state);
    /* Replaces the state with `data` (`len` bytes, borrowed for the call), written by a
     * `snapshot` — possibly of other code, in encoding `version`. */
    int (*restore)(void *self, const uint8_t *data, size_t len, uint32_t version);
    void (*checkpoint_complete)(void *self, uint64_t checkpoint_id);
    void (*close)(void *self);
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

/* A node of the graph, to chain further nodes onto (valid while the graph is). */
typedef struct cairn_stream {
    cairn_graph_t *graph;
    size_t index;
} cairn_stream_t;

/* Names the job (required). */
void cairn_graph_name(cairn_graph_t *graph, const char *name);

/* Sets a configuration key in code (Flink names, for example
 * "execution.checkpointing.interval"). Overrides the config file; `-D` overrides it. */
void cairn_graph_config(cairn_graph_t *graph, const char *key, const char *value);

/* Adds a source node reading host connector `connector` ("file", "generator", "stdin"). */
cairn_stream_t cairn_graph_source(cairn_graph_t *graph, const char *uid, const char *connector);

/* A file source: lines of UTF-8 text file `path`, one record per line. */
cairn_stream_t cairn_source_file(cairn_graph_t *graph, const char *uid, const char *path);

/* The host's standard input, line by line (not replayable). */
cairn_stream_t cairn_source_stdin(cairn_graph_t *graph, const char *uid);

/* Adds operator `name` (a `cairn_operator_t.name` of this job) reading `upstream`. */
cairn_stream_t cairn_stream_operator(cairn_stream_t upstream, const char *uid, const char *name,
                                     cairn_partitioning_t partitioning);

/* Adds a sink node writing to host connector `connector` ("file", "stdout", "blackhole"),
 * reading `upstream`. */
cairn_stream_t cairn_stream_sink(cairn_stream_t upstream, const char *uid, const char *connector,
                                 cairn_partitioning_t partitioning);

/* A file sink: part files in directory `dir`, one series per sink subtask. */
cairn_stream_t cairn_sink_file(cairn_stream_t upstream, const char *uid, const char *dir,
                               cairn_partitioning_t partitioning);

/* The host's standard output. */
cairn_stream_t cairn_sink_stdout(cairn_stream_t upstream, const char *uid,
                                 cairn_partitioning_t partitioning);

/* Adds one more input to a node (for graphs that are not a straight pipeline, such as
 * joins: the operator sees it as input index 1, 2, ...). */
cairn_stream_t cairn_stream_input(cairn_stream_t node, cairn_stream_t upstream,
                                  cairn_partitioning_t partitioning);

/* Sets the node's parallelism (default: the job's default parallelism). */
cairn_stream_t cairn_stream_parallelism(cairn_stream_t node, uint32_t parallelism);

/* Sets an option on the node (a connector's setting, or an operator's own, handed to it in
 * its context). */
cairn_stream_t cairn_stream_option(cairn_stream_t node, const char *key, const char *value);

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
