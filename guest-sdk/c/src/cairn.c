/*
 * cairn.c: the C SDK's implementation, and the adapter from the WIT bindings wit-bindgen
 * generates (cairn_job.h) to the job a component defines with CAIRN_JOB.
 *
 * Ownership follows wit-bindgen's C conventions: arguments of exported functions belong to
 * the callee (freed here once read), and every list or string returned is a separate
 * malloc'd block, freed by the generated post-return functions once the host has copied it.
 */
#include "cairn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_job.h"

/* Marks a record without a timestamp in a batch where others have one. */
#define NO_TIMESTAMP INT64_MIN

/* ---------------------------------------------------------------------------------------
 * Memory
 * ------------------------------------------------------------------------------------- */

static void *xrealloc(void *ptr, size_t size) {
    void *grown = realloc(ptr, size);
    if (grown == NULL && size != 0) abort();
    return grown;
}

static char *xstrdup(const char *s) {
    size_t len = strlen(s);
    char *copy = xrealloc(NULL, len + 1);
    memcpy(copy, s, len + 1);
    return copy;
}

static char *xstrndup(const uint8_t *s, size_t len) {
    char *copy = xrealloc(NULL, len + 1);
    if (len) memcpy(copy, s, len);
    copy[len] = 0;
    return copy;
}

/* A WIT string holding a copy of `s`; nothing allocated for the empty string (the
 * post-return functions free only non-empty strings). */
static cairn_job_string_t wit_string(const char *s) {
    cairn_job_string_t out = {NULL, 0};
    size_t len = s ? strlen(s) : 0;
    if (len) {
        out.ptr = xrealloc(NULL, len);
        memcpy(out.ptr, s, len);
        out.len = len;
    }
    return out;
}

/* Appends a zeroed item to a WIT list (`ptr` and `len` fields), one realloc per item: graphs
 * are small. Evaluates to a pointer to the new item. */
#define PUSH(list)                                                                        \
    ((list)->ptr = xrealloc((list)->ptr, ((list)->len + 1) * sizeof *(list)->ptr),        \
     memset(&(list)->ptr[(list)->len], 0, sizeof *(list)->ptr), &(list)->ptr[(list)->len++])

/* ---------------------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------------------- */

/* The message of the failing call, set by cairn_error, taken by the export that returns it.
 * Calls come one at a time: one pending message for the instance is enough. */
static char *pending_error;
static size_t pending_error_len;

static void set_error(char *message, size_t len) {
    free(pending_error);
    pending_error = message;
    pending_error_len = len;
}

int cairn_error_bytes(const char *message, size_t len) {
    set_error(xstrndup((const uint8_t *)message, len), len);
    return CAIRN_ERROR;
}

/* vsnprintf into a malloc'd string; returns its length. */
static size_t vformat(char **out, const char *format, va_list args) {
    char small[256];
    va_list again;
    va_copy(again, args);
    int n = vsnprintf(small, sizeof small, format, args);
    if (n < 0) {
        va_end(again);
        *out = xstrdup("(message could not be formatted)");
        return strlen(*out);
    }
    *out = xrealloc(NULL, (size_t)n + 1);
    if ((size_t)n < sizeof small)
        memcpy(*out, small, (size_t)n + 1);
    else
        vsnprintf(*out, (size_t)n + 1, format, again);
    va_end(again);
    return (size_t)n;
}

int cairn_error(const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *message;
    size_t len = vformat(&message, format, args);
    va_end(args);
    set_error(message, len);
    return CAIRN_ERROR;
}

/* Hands the pending message to `err` (the generated post-return frees it), or one made of
 * `fallback` when the failing callback set none. */
static void take_error(cairn_job_string_t *err, const char *call, const char *name) {
    if (pending_error == NULL || pending_error_len == 0) {
        if (name)
            cairn_error("%s of operator \"%s\" failed (it set no message: return "
                        "cairn_error(...))", call, name);
        else
            cairn_error("%s failed (it set no message: return cairn_error(...))", call);
    }
    err->ptr = (uint8_t *)pending_error;
    err->len = pending_error_len;
    pending_error = NULL;
    pending_error_len = 0;
}

static void clear_error(void) { set_error(NULL, 0); }

/* ---------------------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------------------- */

void cairn_log_bytes(cairn_level_t level, const char *message, size_t len) {
    cairn_job_string_t text = {(uint8_t *)message, len};
    cairn_job_log_log((cairn_job_log_level_t)level, &text);
}

void cairn_log(cairn_level_t level, const char *format, ...) {
    va_list args;
    va_start(args, format);
    char *message;
    size_t len = vformat(&message, format, args);
    va_end(args);
    cairn_log_bytes(level, message, len);
    free(message);
}

/* ---------------------------------------------------------------------------------------
 * Buffers and the emitter
 * ------------------------------------------------------------------------------------- */

uint8_t *cairn_buffer_reserve(cairn_buffer_t *buf, size_t extra) {
    if (buf->cap - buf->len < extra) {
        size_t cap = buf->cap ? buf->cap * 2 : 256;
        while (cap - buf->len < extra) cap *= 2;
        buf->ptr = xrealloc(buf->ptr, cap);
        buf->cap = cap;
    }
    return buf->ptr + buf->len;
}

void cairn_buffer_append_str(cairn_buffer_t *buf, const char *s) {
    cairn_buffer_append(buf, s, strlen(s));
}

void cairn_buffer_append_u64(cairn_buffer_t *buf, uint64_t n) {
    char digits[20];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    cairn_buffer_append(buf, digits + i, sizeof digits - i);
}

void cairn_buffer_free(cairn_buffer_t *buf) {
    free(buf->ptr);
    buf->ptr = NULL;
    buf->len = buf->cap = 0;
}

void cairn__emitter_offset(cairn_emitter_t *out, size_t end) {
    /* A batch is bounded far below 4 GiB by the host's memory limit. */
    if (end > UINT32_MAX) abort();
    if (out->offsets_len == out->offsets_cap) {
        out->offsets_cap = out->offsets_cap ? out->offsets_cap * 2 : 64;
        out->offsets = xrealloc(out->offsets, out->offsets_cap * sizeof *out->offsets);
    }
    out->offsets[out->offsets_len++] = (uint32_t)end;
}

static void push_timestamp(cairn_emitter_t *out, int64_t timestamp) {
    if (out->timestamps_len == out->timestamps_cap) {
        out->timestamps_cap = out->timestamps_cap ? out->timestamps_cap * 2 : 64;
        out->timestamps =
            xrealloc(out->timestamps, out->timestamps_cap * sizeof *out->timestamps);
    }
    out->timestamps[out->timestamps_len++] = timestamp;
}

void cairn__emitter_timestamp(cairn_emitter_t *out, bool has_timestamp, int64_t timestamp) {
    size_t n = out->offsets_len / 2;
    /* The first timestamp in a batch back-fills "none" for the records before it. */
    while (out->timestamps_len + 1 < n) push_timestamp(out, NO_TIMESTAMP);
    push_timestamp(out, has_timestamp ? timestamp : NO_TIMESTAMP);
}

/* Moves the records emitted into `batch` (the host gets them, the post-return frees them)
 * and leaves the emitter empty. Empty lists stay with the emitter, allocated or not: the
 * post-return frees only non-empty ones. */
static void emitter_take(cairn_emitter_t *out, cairn_job_types_packed_batch_t *batch) {
    *batch = (cairn_job_types_packed_batch_t){0};
    if (out->data.len) {
        batch->data = (cairn_job_list_u8_t){out->data.ptr, out->data.len};
        out->data = (cairn_buffer_t){0};
    }
    if (out->offsets_len) {
        batch->offsets = (cairn_job_list_u32_t){out->offsets, out->offsets_len};
        out->offsets = NULL;
        out->offsets_len = out->offsets_cap = 0;
    }
    if (out->timestamps_len) {
        batch->timestamps = (cairn_job_list_s64_t){out->timestamps, out->timestamps_len};
        out->timestamps = NULL;
        out->timestamps_len = out->timestamps_cap = 0;
    }
}

/* Forgets what a failed call emitted. */
static void emitter_clear(cairn_emitter_t *out) {
    out->data.len = 0;
    out->offsets_len = 0;
    out->timestamps_len = 0;
}

static void emitter_free(cairn_emitter_t *out) {
    cairn_buffer_free(&out->data);
    free(out->offsets);
    free(out->timestamps);
    *out = (cairn_emitter_t){0};
}

/* ---------------------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------------------- */

size_t cairn_whitespace_len(const uint8_t *s, size_t len) {
    if (len == 0) return 0;
    uint8_t b = s[0];
    if (b < 0x80) return (b == ' ' || (b >= '\t' && b <= '\r')) ? 1 : 0;
    switch (b) {
    case 0xC2: /* U+0085 NEL, U+00A0 NO-BREAK SPACE */
        return len >= 2 && (s[1] == 0x85 || s[1] == 0xA0) ? 2 : 0;
    case 0xE1: /* U+1680 OGHAM SPACE MARK */
        return len >= 3 && s[1] == 0x9A && s[2] == 0x80 ? 3 : 0;
    case 0xE2:
        if (len < 3) return 0;
        if (s[1] == 0x80) {
            /* U+2000..U+200A, U+2028, U+2029, U+202F */
            uint8_t c = s[2];
            return (c >= 0x80 && c <= 0x8A) || c == 0xA8 || c == 0xA9 || c == 0xAF ? 3 : 0;
        }
        return s[1] == 0x81 && s[2] == 0x9F ? 3 : 0; /* U+205F */
    case 0xE3: /* U+3000 IDEOGRAPHIC SPACE */
        return len >= 3 && s[1] == 0x80 && s[2] == 0x80 ? 3 : 0;
    default:
        return 0;
    }
}

bool cairn_next_word(cairn_bytes_t text, size_t *pos, cairn_bytes_t *word) {
    const uint8_t *s = text.ptr;
    size_t i = *pos, n = text.len;
    /* Skip whitespace. */
    while (i < n) {
        size_t w = cairn_whitespace_len(s + i, n - i);
        if (w == 0) break;
        i += w;
    }
    if (i >= n) {
        *pos = n;
        return false;
    }
    size_t start = i;
    /* Up to the next whitespace. Bytes that start no whitespace are skipped one at a time;
     * only 0xC2, 0xE1, 0xE2 and 0xE3 can start a multibyte one. */
    while (i < n) {
        uint8_t b = s[i];
        if (b < 0x80) {
            if (b == ' ' || (b >= '\t' && b <= '\r')) break;
            i++;
        } else if ((b == 0xC2 || (b >= 0xE1 && b <= 0xE3)) &&
                   cairn_whitespace_len(s + i, n - i)) {
            break;
        } else {
            i++;
        }
    }
    *word = (cairn_bytes_t){s + start, i - start};
    *pos = i;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------------------- */

const char *cairn_args_value(const cairn_args_t *args, const char *name) {
    const char *found = NULL;
    size_t name_len = strlen(name);
    for (size_t i = 0; i < args->len; i++) {
        const char *arg = args->argv[i];
        if (strcmp(arg, name) == 0) {
            found = i + 1 < args->len ? args->argv[i + 1] : NULL;
            i++;
        } else if (strncmp(arg, name, name_len) == 0 && arg[name_len] == '=') {
            found = arg + name_len + 1;
        }
    }
    return found;
}

const char *cairn_args_required(const cairn_args_t *args, const char *name) {
    const char *value = cairn_args_value(args, name);
    if (value == NULL) cairn_error("missing required argument %s", name);
    return value;
}

int cairn_args_u64(const cairn_args_t *args, const char *name, uint64_t fallback,
                   uint64_t *value) {
    const char *raw = cairn_args_value(args, name);
    if (raw == NULL) {
        *value = fallback;
        return CAIRN_OK;
    }
    uint64_t n = 0;
    const char *p = raw;
    if (*p == 0) return cairn_error("invalid value \"%s\" for %s: not a number", raw, name);
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return cairn_error("invalid value \"%s\" for %s: not a number", raw, name);
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *value = n;
    return CAIRN_OK;
}

/* ---------------------------------------------------------------------------------------
 * The job graph, built directly in the WIT types returned to the host
 * ------------------------------------------------------------------------------------- */

struct cairn_graph {
    cairn_job_types_job_graph_t wit;
};

static cairn_job_types_node_t *node_of(cairn_stream_t stream) {
    return &stream.graph->wit.nodes.ptr[stream.index];
}

void cairn_graph_name(cairn_graph_t *graph, const char *name) {
    cairn_job_string_free(&graph->wit.name);
    graph->wit.name = wit_string(name);
}

static void push_option(cairn_job_list_tuple2_string_string_t *options, const char *key,
                        const char *value) {
    cairn_job_tuple2_string_string_t *option = PUSH(options);
    option->f0 = wit_string(key);
    option->f1 = wit_string(value);
}

void cairn_graph_config(cairn_graph_t *graph, const char *key, const char *value) {
    push_option(&graph->wit.config, key, value);
}

static cairn_stream_t add_node(cairn_graph_t *graph, const char *uid, uint8_t kind,
                               const char *name) {
    cairn_job_types_list_node_t *nodes = &graph->wit.nodes;
    cairn_job_types_node_t *node = PUSH(nodes);
    node->uid = wit_string(uid);
    node->kind.tag = kind;
    /* source, operator_ and sink share the union's storage. */
    node->kind.val.source = wit_string(name);
    return (cairn_stream_t){graph, nodes->len - 1};
}

cairn_stream_t cairn_graph_source(cairn_graph_t *graph, const char *uid, const char *connector) {
    return add_node(graph, uid, CAIRN_JOB_TYPES_NODE_KIND_SOURCE, connector);
}

cairn_stream_t cairn_source_file(cairn_graph_t *graph, const char *uid, const char *path) {
    return cairn_stream_option(cairn_graph_source(graph, uid, "file"), "path", path);
}

cairn_stream_t cairn_source_stdin(cairn_graph_t *graph, const char *uid) {
    return cairn_graph_source(graph, uid, "stdin");
}

cairn_stream_t cairn_stream_input(cairn_stream_t node, cairn_stream_t upstream,
                                  cairn_partitioning_t partitioning) {
    cairn_job_types_node_t *to = node_of(node);
    cairn_job_types_input_t *input = PUSH(&to->inputs);
    cairn_job_string_t uid = node_of(upstream)->uid;
    if (uid.len) {
        input->upstream.ptr = xrealloc(NULL, uid.len);
        memcpy(input->upstream.ptr, uid.ptr, uid.len);
        input->upstream.len = uid.len;
    }
    input->partitioning.tag = (uint8_t)partitioning;
    return node;
}

cairn_stream_t cairn_stream_operator(cairn_stream_t upstream, const char *uid, const char *name,
                                     cairn_partitioning_t partitioning) {
    cairn_stream_t node = add_node(upstream.graph, uid, CAIRN_JOB_TYPES_NODE_KIND_OPERATOR, name);
    return cairn_stream_input(node, upstream, partitioning);
}

cairn_stream_t cairn_stream_sink(cairn_stream_t upstream, const char *uid, const char *connector,
                                 cairn_partitioning_t partitioning) {
    cairn_stream_t node = add_node(upstream.graph, uid, CAIRN_JOB_TYPES_NODE_KIND_SINK, connector);
    return cairn_stream_input(node, upstream, partitioning);
}

cairn_stream_t cairn_sink_file(cairn_stream_t upstream, const char *uid, const char *dir,
                               cairn_partitioning_t partitioning) {
    return cairn_stream_option(cairn_stream_sink(upstream, uid, "file", partitioning), "path",
                               dir);
}

cairn_stream_t cairn_sink_stdout(cairn_stream_t upstream, const char *uid,
                                 cairn_partitioning_t partitioning) {
    return cairn_stream_sink(upstream, uid, "stdout", partitioning);
}

cairn_stream_t cairn_stream_parallelism(cairn_stream_t node, uint32_t parallelism) {
    node_of(node)->parallelism = (cairn_job_option_u32_t){true, parallelism};
    return node;
}

cairn_stream_t cairn_stream_option(cairn_stream_t node, const char *key, const char *value) {
    push_option(&node_of(node)->options, key, value);
    return node;
}

/* ---------------------------------------------------------------------------------------
 * The exports: describe and open
 * ------------------------------------------------------------------------------------- */

bool exports_cairn_job_job_describe(cairn_job_list_string_t *wit_args,
                                    exports_cairn_job_job_job_graph_t *ret,
                                    cairn_job_string_t *err) {
    clear_error();
    size_t n = wit_args->len;
    char **argv = xrealloc(NULL, (n ? n : 1) * sizeof *argv);
    for (size_t i = 0; i < n; i++) argv[i] = xstrndup(wit_args->ptr[i].ptr, wit_args->ptr[i].len);
    cairn_job_list_string_free(wit_args);
    cairn_args_t args = {(const char *const *)argv, n};

    cairn_graph_t graph = {0};
    int status = cairn_job.describe(&args, &graph);
    if (status == CAIRN_OK && graph.wit.name.len == 0)
        status = cairn_error("describe named no job: call cairn_graph_name");
    for (size_t i = 0; i < n; i++) free(argv[i]);
    free(argv);
    if (status != CAIRN_OK) {
        cairn_job_types_job_graph_free(&graph.wit);
        take_error(err, "describe", NULL);
        return false;
    }
    *ret = graph.wit;
    return true;
}

/* The `operator` resource: one running operator subtask. */
struct exports_cairn_job_job_operator_t {
    const cairn_operator_t *op;
    void *self;
    cairn_context_t ctx;
    cairn_emitter_t out;
};

static void context_free(cairn_context_t *ctx) {
    free((char *)ctx->job_id);
    free((char *)ctx->operator_uid);
    for (size_t i = 0; i < ctx->options_len; i++) {
        free((char *)ctx->options[i].key);
        free((char *)ctx->options[i].value);
    }
    free((cairn_option_t *)ctx->options);
}

const char *cairn_context_option(const cairn_context_t *ctx, const char *name) {
    for (size_t i = ctx->options_len; i-- > 0;)
        if (strcmp(ctx->options[i].key, name) == 0) return ctx->options[i].value;
    return NULL;
}

static void instance_free(exports_cairn_job_job_operator_t *instance) {
    if (instance->op->close && instance->self) instance->op->close(instance->self);
    free(instance->self);
    context_free(&instance->ctx);
    emitter_free(&instance->out);
    free(instance);
}

bool exports_cairn_job_job_open(exports_cairn_job_job_context_t *wit_ctx,
                                cairn_job_string_t *wit_name,
                                exports_cairn_job_job_own_operator_t *ret,
                                cairn_job_string_t *err) {
    clear_error();
    char *name = xstrndup(wit_name->ptr, wit_name->len);
    cairn_job_string_free(wit_name);

    const cairn_operator_t *op = NULL;
    for (const cairn_operator_t *const *it = cairn_job.operators; it && *it; it++) {
        if (strcmp((*it)->name, name) == 0) {
            op = *it;
            break;
        }
    }
    if (op == NULL || op->process == NULL) {
        cairn_job_types_context_free(wit_ctx);
        if (op == NULL)
            cairn_error("this job has no operator named \"%s\"", name);
        else
            cairn_error("operator \"%s\" has no process callback", name);
        free(name);
        take_error(err, "open", NULL);
        return false;
    }
    free(name);

    exports_cairn_job_job_operator_t *instance = xrealloc(NULL, sizeof *instance);
    *instance = (exports_cairn_job_job_operator_t){.op = op};
    cairn_context_t *ctx = &instance->ctx;
    ctx->job_id = xstrndup(wit_ctx->job_id.ptr, wit_ctx->job_id.len);
    ctx->operator_uid = xstrndup(wit_ctx->operator_uid.ptr, wit_ctx->operator_uid.len);
    ctx->subtask = wit_ctx->subtask;
    ctx->parallelism = wit_ctx->parallelism;
    ctx->attempt = wit_ctx->attempt;
    size_t n = wit_ctx->options.len;
    cairn_option_t *options = xrealloc(NULL, (n ? n : 1) * sizeof *options);
    for (size_t i = 0; i < n; i++) {
        cairn_job_tuple2_string_string_t *option = &wit_ctx->options.ptr[i];
        options[i].key = xstrndup(option->f0.ptr, option->f0.len);
        options[i].value = xstrndup(option->f1.ptr, option->f1.len);
    }
    ctx->options = options;
    ctx->options_len = n;
    cairn_job_types_context_free(wit_ctx);

    if (op->size) {
        instance->self = xrealloc(NULL, op->size);
        memset(instance->self, 0, op->size);
    }
    if (op->open && op->open(instance->self, ctx) != CAIRN_OK) {
        take_error(err, "open", op->name);
        instance_free(instance);
        return false;
    }
    *ret = exports_cairn_job_job_operator_new(instance);
    return true;
}

void exports_cairn_job_job_operator_destructor(exports_cairn_job_job_operator_t *instance) {
    instance_free(instance);
}

/* ---------------------------------------------------------------------------------------
 * The exports: the operator resource's methods
 * ------------------------------------------------------------------------------------- */

/* Checks a batch's encoding once, so that iterating it can slice without checks. */
static int check_batch(const cairn_job_types_packed_batch_t *batch) {
    size_t n = batch->offsets.len / 2;
    if (batch->offsets.len % 2) return cairn_error("malformed batch: odd number of offsets");
    if (batch->timestamps.len != 0 && batch->timestamps.len != n)
        return cairn_error("malformed batch: timestamps do not match records");
    uint32_t previous = 0;
    for (size_t i = 0; i < batch->offsets.len; i++) {
        uint32_t end = batch->offsets.ptr[i];
        if (end < previous || end > batch->data.len)
            return cairn_error("malformed batch: offsets out of order or range");
        previous = end;
    }
    return CAIRN_OK;
}

static int process_batch(exports_cairn_job_job_operator_t *instance, uint32_t input,
                         const cairn_job_types_packed_batch_t *batch) {
    if (check_batch(batch) != CAIRN_OK) return CAIRN_ERROR;
    const uint8_t *data = batch->data.ptr;
    const uint32_t *offsets = batch->offsets.ptr;
    const int64_t *timestamps = batch->timestamps.len ? batch->timestamps.ptr : NULL;
    size_t n = batch->offsets.len / 2;
    int (*process)(void *, const cairn_record_t *, cairn_emitter_t *) = instance->op->process;
    cairn_record_t record = {.input = input};
    uint32_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key_end = offsets[2 * i], value_end = offsets[2 * i + 1];
        record.key = (cairn_bytes_t){data + start, key_end - start};
        record.value = (cairn_bytes_t){data + key_end, value_end - key_end};
        record.has_timestamp = timestamps && timestamps[i] != NO_TIMESTAMP;
        record.timestamp = record.has_timestamp ? timestamps[i] : 0;
        if (process(instance->self, &record, &instance->out) != CAIRN_OK) return CAIRN_ERROR;
        start = value_end;
    }
    return CAIRN_OK;
}

bool exports_cairn_job_job_method_operator_process(exports_cairn_job_job_borrow_operator_t instance,
                                                   uint32_t input,
                                                   exports_cairn_job_job_packed_batch_t *batch,
                                                   exports_cairn_job_job_packed_batch_t *ret,
                                                   cairn_job_string_t *err) {
    clear_error();
    int status = process_batch(instance, input, batch);
    cairn_job_types_packed_batch_free(batch);
    if (status != CAIRN_OK) {
        emitter_clear(&instance->out);
        take_error(err, "process", instance->op->name);
        return false;
    }
    emitter_take(&instance->out, ret);
    return true;
}

bool exports_cairn_job_job_method_operator_finish(exports_cairn_job_job_borrow_operator_t instance,
                                                  exports_cairn_job_job_packed_batch_t *ret,
                                                  cairn_job_string_t *err) {
    clear_error();
    if (instance->op->finish && instance->op->finish(instance->self, &instance->out) != CAIRN_OK) {
        emitter_clear(&instance->out);
        take_error(err, "finish", instance->op->name);
        return false;
    }
    emitter_take(&instance->out, ret);
    return true;
}

static uint32_t state_version(const cairn_operator_t *op) {
    return op->state_version ? op->state_version : 1;
}

bool exports_cairn_job_job_method_operator_snapshot(exports_cairn_job_job_borrow_operator_t instance,
                                                    uint64_t checkpoint_id,
                                                    exports_cairn_job_job_state_t *ret,
                                                    cairn_job_string_t *err) {
    (void)checkpoint_id;
    clear_error();
    const cairn_operator_t *op = instance->op;
    *ret = (exports_cairn_job_job_state_t){.version = state_version(op)};
    if (op->snapshot == NULL) return true;
    cairn_buffer_t state = {0};
    if (op->snapshot(instance->self, &state) != CAIRN_OK) {
        cairn_buffer_free(&state);
        take_error(err, "snapshot", op->name);
        return false;
    }
    if (state.len) {
        ret->data = (cairn_job_list_u8_t){state.ptr, state.len};
    } else {
        cairn_buffer_free(&state);
    }
    return true;
}

bool exports_cairn_job_job_method_operator_restore(exports_cairn_job_job_borrow_operator_t instance,
                                                   exports_cairn_job_job_state_t *state,
                                                   cairn_job_string_t *err) {
    clear_error();
    const cairn_operator_t *op = instance->op;
    uint32_t version = state->version, reads = state_version(op);
    int status;
    if (op->restore == NULL) {
        status = cairn_error("operator \"%s\" keeps no state (it has no restore), but was "
                             "handed state of encoding version %u",
                             op->name, version);
    } else if (version != reads && !op->restores_other_versions) {
        status = cairn_error("the state is in encoding version %u, operator \"%s\" reads "
                             "version %u; set restores_other_versions and handle version %u "
                             "in restore to migrate it",
                             version, op->name, reads, version);
    } else {
        status = op->restore(instance->self, state->data.ptr, state->data.len, version);
    }
    cairn_job_types_state_free(state);
    if (status != CAIRN_OK) {
        take_error(err, "restore", op->name);
        return false;
    }
    return true;
}

void exports_cairn_job_job_method_operator_checkpoint_complete(
    exports_cairn_job_job_borrow_operator_t instance, uint64_t checkpoint_id) {
    if (instance->op->checkpoint_complete)
        instance->op->checkpoint_complete(instance->self, checkpoint_id);
}
