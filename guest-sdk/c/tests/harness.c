/* harness.c: see harness.h. */
#define _POSIX_C_SOURCE 200809L
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cairn_job.h"

/* ---------------------------------------------------------------------------------------
 * The host's side of the bindings, natively
 * ------------------------------------------------------------------------------------- */

void __wasm_import_cairn_job_log_log(int32_t level, uint8_t *message, size_t len) {
    fprintf(stderr, "    log(%d): %.*s\n", (int)level, (int)len, (const char *)message);
}

uint16_t cairn_test_key_group(const uint8_t *key, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ key[i]) * 0x100000001b3ull;
    return (uint16_t)(h % CAIRN_TEST_MAX_PARALLELISM);
}

int32_t __wasm_import_cairn_job_keys_key_group(uint8_t *key, size_t len) {
    return cairn_test_key_group(key, len);
}

/* Timers, as the host keeps them: registered by the operator, fired by the tests. */
typedef struct timer {
    int32_t domain;
    uint8_t *key;
    size_t key_len;
    int64_t timestamp;
} pending_timer_t;

static pending_timer_t *timers;
static size_t timers_len, timers_cap;
static int64_t clocks[2] = {INT64_MIN, 0}; /* event time (the watermark), processing time */

/* Counters by name. */
static struct {
    char name[65];
    uint64_t value;
} counters[16];

static long find_timer(int32_t domain, const uint8_t *key, size_t len, int64_t timestamp) {
    for (size_t i = 0; i < timers_len; i++)
        if (timers[i].domain == domain && timers[i].timestamp == timestamp &&
            timers[i].key_len == len && (len == 0 || memcmp(timers[i].key, key, len) == 0))
            return (long)i;
    return -1;
}

void __wasm_import_cairn_job_timers_register(int32_t domain, uint8_t *key, size_t len,
                                             int64_t timestamp, uint8_t *ret) {
    /* result<_, string>: the tag, then (for an err) the string's pointer and length. */
    ret[0] = 0;
    if (find_timer(domain, key, len, timestamp) >= 0) return;
    if (timers_len == timers_cap) {
        timers_cap = timers_cap ? 2 * timers_cap : 64;
        timers = realloc(timers, timers_cap * sizeof *timers);
        if (timers == NULL) abort();
    }
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) abort();
    if (len) memcpy(copy, key, len);
    timers[timers_len++] = (pending_timer_t){domain, copy, len, timestamp};
}

void __wasm_import_cairn_job_timers_delete(int32_t domain, uint8_t *key, size_t len,
                                           int64_t timestamp) {
    long i = find_timer(domain, key, len, timestamp);
    if (i < 0) return;
    free(timers[i].key);
    timers[i] = timers[--timers_len];
}

int64_t __wasm_import_cairn_job_timers_current_watermark(void) { return clocks[0]; }

int64_t __wasm_import_cairn_job_timers_current_processing_time(void) { return clocks[1]; }

/* What operators sent to side outputs, by name: `key:value@timestamp`, comma-separated. */
static struct {
    char name[65];
    char records[4096];
} side_outputs[8];

void __wasm_import_cairn_job_outputs_emit(uint8_t *name, size_t name_len, uint8_t *data,
                                          size_t data_len, uint8_t *offsets, size_t offsets_len,
                                          uint8_t *timestamps, size_t timestamps_len) {
    (void)data_len;
    size_t i = 0;
    while (i < sizeof side_outputs / sizeof *side_outputs && side_outputs[i].name[0] &&
           !(strlen(side_outputs[i].name) == name_len &&
             memcmp(side_outputs[i].name, name, name_len) == 0))
        i++;
    if (i == sizeof side_outputs / sizeof *side_outputs || name_len >= sizeof side_outputs[i].name) {
        fprintf(stderr, "harness: too many side outputs, or too long a name\n");
        abort();
    }
    memcpy(side_outputs[i].name, name, name_len);
    char *shown = side_outputs[i].records;
    size_t at = strlen(shown), start = 0;
    const uint32_t *ends = (const uint32_t *)offsets;
    const int64_t *stamps = (const int64_t *)timestamps;
    for (size_t r = 0; r < offsets_len / 2; r++) {
        uint32_t key_end = ends[2 * r], end = ends[2 * r + 1];
        at += (size_t)snprintf(shown + at, sizeof side_outputs[i].records - at, "%s%.*s:%.*s",
                               at ? "," : "", (int)(key_end - start),
                               (const char *)data + start, (int)(end - key_end),
                               (const char *)data + key_end);
        if (timestamps_len && stamps[r] != INT64_MIN)
            at += (size_t)snprintf(shown + at, sizeof side_outputs[i].records - at, "@%lld",
                                   (long long)stamps[r]);
        start = end;
    }
}

const char *cairn_test_side_output(const char *name) {
    for (size_t i = 0; i < sizeof side_outputs / sizeof *side_outputs; i++)
        if (strcmp(side_outputs[i].name, name) == 0) return side_outputs[i].records;
    return "";
}

void __wasm_import_cairn_job_metrics_counter_add(uint8_t *name, size_t len, int64_t delta) {
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++) {
        if (counters[i].name[0] == 0 && len < sizeof counters[i].name) {
            memcpy(counters[i].name, name, len);
            counters[i].name[len] = 0;
        }
        if (strlen(counters[i].name) == len && memcmp(counters[i].name, name, len) == 0) {
            counters[i].value += (uint64_t)delta;
            return;
        }
    }
    fprintf(stderr, "harness: too many counters\n");
    abort();
}

uint64_t cairn_test_counter(const char *name) {
    for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
        if (strcmp(counters[i].name, name) == 0) return counters[i].value;
    return 0;
}

size_t cairn_test_timers(void) { return timers_len; }

void cairn_test_reset_host(void) {
    for (size_t i = 0; i < timers_len; i++) free(timers[i].key);
    timers_len = 0;
    clocks[0] = INT64_MIN;
    clocks[1] = 0;
    memset(counters, 0, sizeof counters);
    memset(side_outputs, 0, sizeof side_outputs);
}

/* Handles of the operator resource: indexes into this table of instances. */
static exports_cairn_job_job_operator_t *instances[64];

exports_cairn_job_job_own_operator_t exports_cairn_job_job_operator_new(
    exports_cairn_job_job_operator_t *rep) {
    for (int32_t i = 0; i < (int32_t)(sizeof instances / sizeof *instances); i++) {
        if (instances[i] == NULL) {
            instances[i] = rep;
            return (exports_cairn_job_job_own_operator_t){i};
        }
    }
    fprintf(stderr, "harness: too many operator instances\n");
    abort();
}

/* What the generated code links against on wasm32 that nothing calls natively: the
 * resource imports, and the component type object (cairn_job_component_type.o). */
void __component_type_object_force_link_cairn_job(void) {}

int32_t __wasm_import_exports_cairn_job_job_operator_new(int32_t rep) {
    (void)rep;
    abort();
}

int32_t __wasm_import_exports_cairn_job_job_operator_rep(int32_t handle) {
    (void)handle;
    abort();
}

void __wasm_import_exports_cairn_job_job_operator_drop(int32_t handle) {
    (void)handle;
    abort();
}

/* ---------------------------------------------------------------------------------------
 * Driving the exports
 * ------------------------------------------------------------------------------------- */

static void *copy_of(const void *from, size_t len) {
    if (len == 0) return NULL;
    void *to = malloc(len);
    if (to == NULL) abort();
    memcpy(to, from, len);
    return to;
}

static char *take_string(cairn_job_string_t *s) {
    char *text = malloc(s->len + 1);
    if (text == NULL) abort();
    if (s->len) memcpy(text, s->ptr, s->len);
    text[s->len] = 0;
    cairn_job_string_free(s);
    return text;
}

/* Opens operator `name` as the subtask of key groups `first` to `last`, its node's options
 * `options` (`n` key, value pairs). */
static void *open_with(const char *name, uint32_t first, uint32_t last,
                       const char *const *options, size_t n, char **error) {
    static const char job_id[] = "00000000000000000000000000000000";
    exports_cairn_job_job_context_t ctx = {
        .job_id = {copy_of(job_id, strlen(job_id)), strlen(job_id)},
        .operator_uid = {copy_of(name, strlen(name)), strlen(name)},
        .subtask = 0,
        .parallelism = 1,
        .attempt = 0,
        .max_parallelism = CAIRN_TEST_MAX_PARALLELISM,
        .key_groups = {first, last},
        .options = {n ? malloc(n * sizeof(cairn_job_tuple2_string_string_t)) : NULL, n},
    };
    for (size_t i = 0; i < n; i++) {
        const char *key = options[2 * i], *value = options[2 * i + 1];
        ctx.options.ptr[i] = (cairn_job_tuple2_string_string_t){
            {copy_of(key, strlen(key)), strlen(key)}, {copy_of(value, strlen(value)), strlen(value)}};
    }
    cairn_job_string_t wit_name = {copy_of(name, strlen(name)), strlen(name)};
    exports_cairn_job_job_own_operator_t handle;
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_open(&ctx, &wit_name, &handle, &err)) {
        *error = take_string(&err);
        return NULL;
    }
    return instances[handle.__handle];
}

void *cairn_test_open_subtask(const char *name, uint32_t first, uint32_t last, char **error) {
    return open_with(name, first, last, NULL, 0, error);
}

void *cairn_test_open_with_options(const char *name, const char *const *options, size_t n,
                                   char **error) {
    return open_with(name, 0, CAIRN_TEST_MAX_PARALLELISM - 1, options, n, error);
}

void *cairn_test_open(const char *name, char **error) {
    return cairn_test_open_subtask(name, 0, CAIRN_TEST_MAX_PARALLELISM - 1, error);
}

/* The key group of each record of `batch` (whose key ends where its previous value did). */
static cairn_job_list_u16_t key_groups_of(const cairn_test_batch_t *batch) {
    size_t n = batch->offsets_len / 2;
    cairn_job_list_u16_t groups = {n ? malloc(n * sizeof(uint16_t)) : NULL, n};
    if (n && groups.ptr == NULL) abort();
    for (size_t i = 0, start = 0; i < n; start = batch->offsets[2 * i + 1], i++)
        groups.ptr[i] = cairn_test_key_group(batch->data + start, batch->offsets[2 * i] - start);
    return groups;
}

bool cairn_test_process(void *instance, uint32_t input, const cairn_test_batch_t *batch,
                        bool by_key, cairn_test_batch_t *out, char **error) {
    exports_cairn_job_job_packed_batch_t in = {
        .data = {copy_of(batch->data, batch->data_len), batch->data_len},
        .offsets = {copy_of(batch->offsets, batch->offsets_len * sizeof(uint32_t)),
                    batch->offsets_len},
        .timestamps = {copy_of(batch->timestamps, batch->timestamps_len * sizeof(int64_t)),
                       batch->timestamps_len},
    };
    cairn_job_list_u16_t key_groups = by_key ? key_groups_of(batch) : (cairn_job_list_u16_t){0};
    exports_cairn_job_job_packed_batch_t ret;
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_method_operator_process(instance, input, &in, &key_groups, &ret,
                                                       &err)) {
        *error = take_string(&err);
        return false;
    }
    *out = (cairn_test_batch_t){
        ret.data.ptr, ret.data.len, ret.offsets.ptr, ret.offsets.len,
        ret.timestamps.ptr, ret.timestamps.len,
    };
    return true;
}

/* The WIT list<u8> and this harness's bytes have the same layout; copies, since exports
 * own their arguments and the post-return functions free what they return. */
static cairn_job_list_u8_t list_copy(cairn_test_bytes_t bytes) {
    return (cairn_job_list_u8_t){copy_of(bytes.ptr, bytes.len), bytes.len};
}

bool cairn_test_snapshot(void *instance, cairn_test_snapshot_t *out, char **error) {
    exports_cairn_job_job_snapshot_t ret;
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_method_operator_snapshot(instance, 1, &ret, &err)) {
        *error = take_string(&err);
        return false;
    }
    *out = (cairn_test_snapshot_t){
        .version = ret.version,
        .items = (cairn_test_bytes_t *)ret.operator_state.ptr,
        .items_len = ret.operator_state.len,
        .mode = ret.operator_state_mode,
        .chunks = (cairn_test_chunk_t *)ret.keyed.ptr,
        .chunks_len = ret.keyed.len,
        .value_encoding = ret.value_encoding,
    };
    return true;
}

void cairn_test_snapshot_free(cairn_test_snapshot_t *snapshot) {
    for (size_t i = 0; i < snapshot->items_len; i++) free(snapshot->items[i].ptr);
    for (size_t i = 0; i < snapshot->chunks_len; i++) free(snapshot->chunks[i].entries.ptr);
    free(snapshot->items);
    free(snapshot->chunks);
    *snapshot = (cairn_test_snapshot_t){0};
}

bool cairn_test_restore_keyed(void *instance, uint32_t version, const cairn_test_chunk_t *chunks,
                              size_t len, char **error) {
    exports_cairn_job_job_list_keyed_chunk_t list = {
        len ? malloc(len * sizeof *list.ptr) : NULL, len};
    for (size_t i = 0; i < len; i++)
        list.ptr[i] = (cairn_job_types_keyed_chunk_t){chunks[i].key_group,
                                                      list_copy(chunks[i].entries)};
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_method_operator_restore_keyed(instance, version, &list, &err)) {
        *error = take_string(&err);
        return false;
    }
    return true;
}

bool cairn_test_restore(void *instance, uint32_t version, const cairn_test_bytes_t *items,
                        size_t len, char **error) {
    cairn_job_list_list_u8_t list = {len ? malloc(len * sizeof *list.ptr) : NULL, len};
    for (size_t i = 0; i < len; i++) list.ptr[i] = list_copy(items[i]);
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_method_operator_restore(instance, version, &list, &err)) {
        *error = take_string(&err);
        return false;
    }
    return true;
}

/* Messages and results handed out as text, until the next call. */
static char text[8192];

static const char *error_text(char *error) {
    snprintf(text, sizeof text, "error: %s", error);
    free(error);
    return text;
}

/* Orders timers as the host fires them: by timestamp, then key. */
static int timer_order(const void *a, const void *b) {
    const pending_timer_t *x = a, *y = b;
    if (x->timestamp != y->timestamp) return x->timestamp < y->timestamp ? -1 : 1;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = n ? memcmp(x->key, y->key, n) : 0;
    return c ? c : (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/* Appends `batch`'s records to `text` at `*at` as `value@timestamp`, comma-separated. */
static void show(const cairn_test_batch_t *batch, size_t *at) {
    for (size_t i = 0; i < batch->offsets_len / 2; i++) {
        uint32_t key_end = batch->offsets[2 * i], end = batch->offsets[2 * i + 1];
        *at += (size_t)snprintf(text + *at, sizeof text - *at, "%s%.*s", *at ? "," : "",
                                (int)(end - key_end), (const char *)batch->data + key_end);
        if (batch->timestamps_len && batch->timestamps[i] != INT64_MIN)
            *at += (size_t)snprintf(text + *at, sizeof text - *at, "@%lld",
                                    (long long)batch->timestamps[i]);
    }
}

/* Fires the timers of `domain` due at its time, in order (those registered meanwhile too),
 * one `on-timer` call per timestamp; appends what they emit to `text`. */
static bool fire_due(void *instance, int32_t domain, size_t *at, char **error) {
    for (;;) {
        qsort(timers, timers_len, sizeof *timers, timer_order);
        size_t first = 0;
        while (first < timers_len &&
               (timers[first].domain != domain || timers[first].timestamp > clocks[domain]))
            first++;
        if (first == timers_len) return true;
        int64_t due = timers[first].timestamp;
        /* At least one timer is due: every list gets an item. */
        cairn_test_batch_t batch = {0};
        cairn_job_list_u16_t groups = {NULL, 0};
        for (size_t i = first; i < timers_len;) {
            pending_timer_t t = timers[i];
            if (t.domain != domain || t.timestamp != due) {
                i++;
                continue;
            }
            batch.data = realloc(batch.data, batch.data_len + t.key_len + 1);
            batch.offsets = realloc(batch.offsets, (batch.offsets_len + 2) * sizeof(uint32_t));
            batch.timestamps =
                realloc(batch.timestamps, (batch.timestamps_len + 1) * sizeof(int64_t));
            groups.ptr = realloc(groups.ptr, (groups.len + 1) * sizeof(uint16_t));
            if (!batch.data || !batch.offsets || !batch.timestamps || !groups.ptr) abort();
            if (t.key_len) memcpy(batch.data + batch.data_len, t.key, t.key_len);
            batch.data_len += t.key_len;
            batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
            batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
            batch.timestamps[batch.timestamps_len++] = t.timestamp;
            groups.ptr[groups.len++] = cairn_test_key_group(t.key, t.key_len);
            free(t.key);
            memmove(&timers[i], &timers[i + 1], (timers_len - i - 1) * sizeof *timers);
            timers_len--;
        }
        exports_cairn_job_job_packed_batch_t in = {
            .data = {batch.data, batch.data_len},
            .offsets = {batch.offsets, batch.offsets_len},
            .timestamps = {batch.timestamps, batch.timestamps_len},
        };
        exports_cairn_job_job_packed_batch_t ret;
        cairn_job_string_t err = {0};
        if (!exports_cairn_job_job_method_operator_on_timer(instance, (uint8_t)domain, &in,
                                                            &groups, &ret, &err)) {
            *error = take_string(&err);
            return false;
        }
        cairn_test_batch_t out = {ret.data.ptr,    ret.data.len,       ret.offsets.ptr,
                                  ret.offsets.len, ret.timestamps.ptr, ret.timestamps.len};
        show(&out, at);
        cairn_test_batch_free(&out);
    }
}

const char *cairn_test_advance(void *instance, int domain, int64_t time) {
    clocks[domain] = time;
    size_t at = 0;
    text[0] = 0;
    char *error = NULL;
    if (!fire_due(instance, domain, &at, &error)) return error_text(error);
    return text;
}

const char *cairn_test_end_of_input(void *instance) {
    clocks[0] = INT64_MAX;
    size_t at = 0;
    text[0] = 0;
    char *error = NULL;
    if (!fire_due(instance, 0, &at, &error)) return error_text(error);
    exports_cairn_job_job_packed_batch_t ret;
    cairn_job_string_t err = {0};
    if (!exports_cairn_job_job_method_operator_finish(instance, &ret, &err))
        return error_text(take_string(&err));
    cairn_test_batch_t out = {ret.data.ptr,    ret.data.len,       ret.offsets.ptr,
                              ret.offsets.len, ret.timestamps.ptr, ret.timestamps.len};
    show(&out, &at);
    cairn_test_batch_free(&out);
    return text;
}

const char *cairn_test_process_stamped(void *instance, const char *const *keys,
                                       const int64_t *timestamps, size_t n) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(keys[i]);
    cairn_test_batch_t batch = {.data = malloc(len + 1),
                                .offsets = malloc(2 * n * sizeof(uint32_t) + 1),
                                .timestamps = malloc(n * sizeof(int64_t) + 1)};
    if (batch.data == NULL || batch.offsets == NULL || batch.timestamps == NULL) abort();
    for (size_t i = 0; i < n; i++) {
        memcpy(batch.data + batch.data_len, keys[i], strlen(keys[i]));
        batch.data_len += strlen(keys[i]);
        batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
        batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
        batch.timestamps[batch.timestamps_len++] = timestamps[i];
    }
    cairn_test_batch_t out;
    char *error = NULL;
    bool ok = cairn_test_process(instance, 0, &batch, true, &out, &error);
    cairn_test_batch_free(&batch);
    if (!ok) return error_text(error);
    size_t at = 0;
    text[0] = 0;
    show(&out, &at);
    cairn_test_batch_free(&out);
    return text;
}


const char *cairn_test_process_keys(void *instance, uint32_t input, bool by_key,
                                    const char *const *keys, size_t n, const char *value) {
    size_t value_len = value ? strlen(value) : 0, len = 0;
    for (size_t i = 0; i < n; i++) len += strlen(keys[i]) + value_len;
    cairn_test_batch_t batch = {.data = malloc(len + 1),
                                .offsets = malloc(2 * n * sizeof(uint32_t) + 1)};
    if (batch.data == NULL || batch.offsets == NULL) abort();
    for (size_t i = 0; i < n; i++) {
        memcpy(batch.data + batch.data_len, keys[i], strlen(keys[i]));
        batch.data_len += strlen(keys[i]);
        batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
        if (value_len) memcpy(batch.data + batch.data_len, value, value_len);
        batch.data_len += value_len;
        batch.offsets[batch.offsets_len++] = (uint32_t)batch.data_len;
    }
    cairn_test_batch_t out;
    char *error = NULL;
    bool ok = cairn_test_process(instance, input, &batch, by_key, &out, &error);
    cairn_test_batch_free(&batch);
    if (!ok) return error_text(error);
    size_t at = 0;
    text[0] = 0;
    for (size_t i = 0; i < out.offsets_len / 2; i++) {
        uint32_t key_end = out.offsets[2 * i], end = out.offsets[2 * i + 1];
        at += (size_t)snprintf(text + at, sizeof text - at, "%s%.*s", i ? "," : "",
                               (int)(end - key_end), (const char *)out.data + key_end);
    }
    cairn_test_batch_free(&out);
    return text;
}

const char *cairn_test_restore_all(void *instance, uint32_t version,
                                   const cairn_test_chunk_t *chunks, size_t chunks_len,
                                   const cairn_test_bytes_t *items, size_t items_len) {
    char *error = NULL;
    if (!cairn_test_restore_keyed(instance, version, chunks, chunks_len, &error) ||
        !cairn_test_restore(instance, version, items, items_len, &error))
        return error_text(error);
    return "";
}

void cairn_test_close(void *instance) {
    for (size_t i = 0; i < sizeof instances / sizeof *instances; i++)
        if (instances[i] == instance) instances[i] = NULL;
    exports_cairn_job_job_operator_destructor(instance);
}

void cairn_test_batch_free(cairn_test_batch_t *batch) {
    free(batch->data);
    free(batch->offsets);
    free(batch->timestamps);
    *batch = (cairn_test_batch_t){0};
}

bool cairn_test_same_batch(const char *what, const cairn_test_batch_t *batch,
                           const cairn_test_batch_t *expected) {
    if (batch->data_len != expected->data_len ||
        (batch->data_len && memcmp(batch->data, expected->data, batch->data_len) != 0)) {
        printf("    %s: data differs (%zu bytes, expected %zu)\n", what,
                batch->data_len, expected->data_len);
        return false;
    }
    if (batch->offsets_len != expected->offsets_len) {
        printf("    %s: %zu offsets, expected %zu\n", what, batch->offsets_len,
                expected->offsets_len);
        return false;
    }
    for (size_t i = 0; i < batch->offsets_len; i++) {
        if (batch->offsets[i] != expected->offsets[i]) {
            printf("    %s: offset %zu is %u, expected %u\n", what, i,
                    batch->offsets[i], expected->offsets[i]);
            return false;
        }
    }
    if (batch->timestamps_len != expected->timestamps_len) {
        printf("    %s: %zu timestamps, expected %zu\n", what, batch->timestamps_len,
                expected->timestamps_len);
        return false;
    }
    for (size_t i = 0; i < batch->timestamps_len; i++) {
        if (batch->timestamps[i] != expected->timestamps[i]) {
            printf("    %s: timestamp %zu is %lld, expected %lld\n", what, i,
                    (long long)batch->timestamps[i], (long long)expected->timestamps[i]);
            return false;
        }
    }
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Reading the vectors
 * ------------------------------------------------------------------------------------- */

static const char *vectors_path;
static size_t line_number;

static _Noreturn void bad_line(const char *why) {
    fprintf(stderr, "%s:%zu: %s\n", vectors_path, line_number, why);
    exit(2);
}

static void *grow(void *ptr, size_t count, size_t size) {
    void *grown = realloc(ptr, (count ? count : 1) * size);
    if (grown == NULL) abort();
    return grown;
}

/* `x` and hex digits. */
static uint8_t *parse_bytes(const char *token, size_t *len) {
    if (token == NULL || token[0] != 'x') bad_line("bytes are x followed by hex digits");
    size_t digits = strlen(token + 1);
    if (digits % 2) bad_line("odd number of hex digits");
    uint8_t *out = grow(NULL, digits / 2, 1);
    for (size_t i = 0; i < digits / 2; i++) {
        unsigned byte;
        if (sscanf(token + 1 + 2 * i, "%2x", &byte) != 1) bad_line("not hex");
        out[i] = (uint8_t)byte;
    }
    *len = digits / 2;
    return out;
}

static long long parse_integer(const char *token, long long min, long long max) {
    char *end;
    errno = 0;
    long long n = strtoll(token, &end, 10);
    if (errno || *end || end == token || n < min || n > max) bad_line("not an integer in range");
    return n;
}

size_t cairn_test_read_vectors(const char *path, cairn_test_vector_t **vectors) {
    vectors_path = path;
    FILE *file = fopen(vectors_path, "r");
    if (file == NULL) {
        fprintf(stderr, "cannot open %s: %s\n", vectors_path, strerror(errno));
        exit(2);
    }
    cairn_test_vector_t *list = NULL, *current = NULL;
    size_t count = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    line_number = 0;
    while ((n = getline(&line, &cap, file)) >= 0) {
        line_number++;
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        if (n == 0 || line[0] == '#') continue;
        char *rest;
        char *directive = strtok_r(line, " ", &rest);
        if (strcmp(directive, "vector") == 0 || strcmp(directive, "malformed") == 0) {
            if (current) bad_line("the previous vector has no end");
            list = grow(list, count + 1, sizeof *list);
            current = &list[count];
            *current = (cairn_test_vector_t){.malformed = directive[0] == 'm'};
            current->name = strdup(rest);
            continue;
        }
        if (current == NULL) bad_line("a line outside a vector");
        cairn_test_batch_t *encoded = &current->encoded;
        if (strcmp(directive, "record") == 0) {
            char *key = strtok_r(NULL, " ", &rest), *value = strtok_r(NULL, " ", &rest),
                 *timestamp = strtok_r(NULL, " ", &rest);
            if (timestamp == NULL || current->malformed) bad_line("a record is key value timestamp");
            current->records = grow(current->records, current->records_len + 1,
                                    sizeof *current->records);
            cairn_test_record_t *r = &current->records[current->records_len++];
            *r = (cairn_test_record_t){0};
            r->has_key = strcmp(key, "none") != 0;
            if (r->has_key) r->key = parse_bytes(key, &r->key_len);
            r->value = parse_bytes(value, &r->value_len);
            r->has_timestamp = strcmp(timestamp, "none") != 0;
            if (r->has_timestamp) r->timestamp = parse_integer(timestamp, INT64_MIN, INT64_MAX);
        } else if (strcmp(directive, "entry") == 0) {
            char *key = strtok_r(NULL, " ", &rest), *value = strtok_r(NULL, " ", &rest);
            if (value == NULL || current->malformed) bad_line("an entry is key value");
            current->entries = grow(current->entries, current->entries_len + 1,
                                    sizeof *current->entries);
            cairn_test_entry_t *e = &current->entries[current->entries_len++];
            *e = (cairn_test_entry_t){.tombstone = strcmp(value, "tombstone") == 0};
            e->key.ptr = parse_bytes(key, &e->key.len);
            if (!e->tombstone) e->value.ptr = parse_bytes(value, &e->value.len);
        } else if (strcmp(directive, "chunk") == 0) {
            current->chunk.ptr = parse_bytes(strtok_r(NULL, " ", &rest), &current->chunk.len);
        } else if (strcmp(directive, "data") == 0) {
            encoded->data = parse_bytes(strtok_r(NULL, " ", &rest), &encoded->data_len);
        } else if (strcmp(directive, "offsets") == 0) {
            for (char *t; (t = strtok_r(NULL, " ", &rest));) {
                encoded->offsets = grow(encoded->offsets, encoded->offsets_len + 1,
                                        sizeof *encoded->offsets);
                encoded->offsets[encoded->offsets_len++] =
                    (uint32_t)parse_integer(t, 0, UINT32_MAX);
            }
        } else if (strcmp(directive, "timestamps") == 0) {
            for (char *t; (t = strtok_r(NULL, " ", &rest));) {
                encoded->timestamps = grow(encoded->timestamps, encoded->timestamps_len + 1,
                                           sizeof *encoded->timestamps);
                encoded->timestamps[encoded->timestamps_len++] =
                    parse_integer(t, INT64_MIN, INT64_MAX);
            }
        } else if (strcmp(directive, "end") == 0) {
            current = NULL;
            count++;
        } else {
            bad_line("unknown line");
        }
    }
    free(line);
    fclose(file);
    if (current) bad_line("the last vector has no end");
    *vectors = list;
    return count;
}

void cairn_test_free_vectors(cairn_test_vector_t *vectors, size_t count) {
    for (size_t i = 0; i < count; i++) {
        cairn_test_vector_t *v = &vectors[i];
        for (size_t j = 0; j < v->records_len; j++) {
            free(v->records[j].key);
            free(v->records[j].value);
        }
        free(v->records);
        for (size_t j = 0; j < v->entries_len; j++) {
            free(v->entries[j].key.ptr);
            free(v->entries[j].value.ptr);
        }
        free(v->entries);
        free(v->chunk.ptr);
        free(v->name);
        cairn_test_batch_free(&v->encoded);
    }
    free(vectors);
}
