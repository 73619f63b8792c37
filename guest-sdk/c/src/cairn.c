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
#include "window.h"

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
 * Timers, clocks and counters: the host's imports
 * ------------------------------------------------------------------------------------- */

int cairn_timer_register(cairn_time_domain_t domain, const void *key, size_t key_len,
                         int64_t timestamp) {
    cairn_job_list_u8_t wit_key = {(uint8_t *)key, key_len};
    cairn_job_string_t err = {NULL, 0};
    if (cairn_job_timers_register((cairn_job_timers_time_domain_t)domain, &wit_key, timestamp,
                                  &err))
        return CAIRN_OK;
    cairn_error("cannot register a timer at %lld: %.*s", (long long)timestamp, (int)err.len,
                (const char *)err.ptr);
    cairn_job_string_free(&err);
    return CAIRN_ERROR;
}

void cairn_timer_delete(cairn_time_domain_t domain, const void *key, size_t key_len,
                        int64_t timestamp) {
    cairn_job_list_u8_t wit_key = {(uint8_t *)key, key_len};
    cairn_job_timers_delete((cairn_job_timers_time_domain_t)domain, &wit_key, timestamp);
}

/* The input watermark moves only between calls: asked of the host once per `process`,
 * `on_timer` or `finish` call (the calls timers are for), and forgotten at its start and
 * end (elsewhere it is asked every time). */
static bool watermark_known;
static int64_t watermark;

int64_t cairn_current_watermark(void) {
    if (!watermark_known) {
        watermark = cairn_job_timers_current_watermark();
        watermark_known = true;
    }
    return watermark;
}

int64_t cairn_current_processing_time(void) {
    return cairn_job_timers_current_processing_time();
}

void cairn_counter_add(const char *name, uint64_t delta) {
    cairn_job_string_t wit_name = {(uint8_t *)name, strlen(name)};
    cairn_job_metrics_counter_add(&wit_name, delta);
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

void cairn_buffer_append_i64(cairn_buffer_t *buf, int64_t n) {
    if (n < 0) cairn_buffer_push(buf, '-');
    /* The magnitude, INT64_MIN's included. */
    cairn_buffer_append_u64(buf, n < 0 ? 0 - (uint64_t)n : (uint64_t)n);
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

void cairn_emit_stamp(cairn_emitter_t *out, size_t first, int64_t timestamp) {
    size_t n = out->offsets_len / 2;
    while (out->timestamps_len < n) push_timestamp(out, NO_TIMESTAMP);
    for (size_t i = first; i < n; i++) out->timestamps[i] = timestamp;
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
 * Side outputs: an emitter per name, its records sent at the end of the call
 * ------------------------------------------------------------------------------------- */

typedef struct side_output {
    char *name;
    cairn_emitter_t records;
} side_output_t;

/* Every side output emitted to so far (kept, empty, between calls: their memory is reused). */
static side_output_t *side_outputs;
static size_t side_outputs_len;

cairn_emitter_t *cairn_side_output(const char *name) {
    for (size_t i = 0; i < side_outputs_len; i++)
        if (strcmp(side_outputs[i].name, name) == 0) return &side_outputs[i].records;
    side_outputs = xrealloc(side_outputs, (side_outputs_len + 1) * sizeof *side_outputs);
    side_outputs[side_outputs_len] = (side_output_t){.name = xstrdup(name)};
    return &side_outputs[side_outputs_len++].records;
}

/* The end of a call: sends each side output's records as one batch (the host copies it), or
 * forgets them when the call failed. */
static void side_outputs_end(bool send) {
    for (size_t i = 0; i < side_outputs_len; i++) {
        cairn_emitter_t *records = &side_outputs[i].records;
        if (send && cairn_emit_count(records)) {
            cairn_job_types_packed_batch_t batch = {
                .data = {records->data.ptr, records->data.len},
                .offsets = {records->offsets, records->offsets_len},
                .timestamps = {records->timestamps, records->timestamps_len},
            };
            cairn_job_string_t name = {(uint8_t *)side_outputs[i].name,
                                       strlen(side_outputs[i].name)};
            cairn_job_outputs_emit(&name, &batch);
        }
        emitter_clear(records);
    }
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
 * The keyed chunk encoding: entry = varint(len key) key varint(tag) value, tag 0 for a
 * tombstone and len(value) + 1 otherwise; varints are unsigned LEB128 below 2^32.
 * ------------------------------------------------------------------------------------- */

static void put_varint(cairn_buffer_t *out, uint32_t n) {
    uint8_t *to = cairn_buffer_reserve(out, 5);
    size_t i = 0;
    for (; n >= 0x80; n >>= 7) to[i++] = (uint8_t)(n | 0x80);
    to[i++] = (uint8_t)n;
    out->len += i;
}

static int get_varint(cairn_bytes_t in, size_t *pos, uint32_t *n) {
    uint64_t value = 0;
    for (unsigned i = 0; i < 5; i++) {
        if (*pos >= in.len) return cairn_error("malformed keyed chunk: a varint is cut short");
        uint8_t byte = in.ptr[(*pos)++];
        value |= (uint64_t)(byte & 0x7f) << (7 * i);
        if (!(byte & 0x80)) {
            if (value > UINT32_MAX)
                return cairn_error("malformed keyed chunk: a varint over 32 bits");
            *n = (uint32_t)value;
            return CAIRN_OK;
        }
    }
    return cairn_error("malformed keyed chunk: a varint longer than 5 bytes");
}

/* `len` bytes at `*pos`, which must be there. */
static int get_bytes(cairn_bytes_t in, size_t *pos, uint32_t len, cairn_bytes_t *out) {
    if (len > in.len - *pos)
        return cairn_error("malformed keyed chunk: an entry runs past the end (%u bytes at "
                           "byte %zu of %zu)", len, *pos, in.len);
    *out = (cairn_bytes_t){in.ptr + *pos, len};
    *pos += len;
    return CAIRN_OK;
}

int cairn_chunk_next(cairn_bytes_t entries, size_t *pos, cairn_chunk_entry_t *entry) {
    if (*pos >= entries.len) return 0;
    uint32_t key_len, tag;
    if (get_varint(entries, pos, &key_len) != CAIRN_OK ||
        get_bytes(entries, pos, key_len, &entry->key) != CAIRN_OK ||
        get_varint(entries, pos, &tag) != CAIRN_OK)
        return CAIRN_ERROR;
    entry->tombstone = tag == 0;
    entry->value = (cairn_bytes_t){NULL, 0};
    if (tag && get_bytes(entries, pos, tag - 1, &entry->value) != CAIRN_OK) return CAIRN_ERROR;
    return 1;
}

/* Keys and values live in a 32-bit guest memory: their lengths (+ 1) fit a u32. */
void cairn_chunk_put(cairn_buffer_t *entries, const void *key, size_t key_len, const void *value,
                     size_t value_len) {
    put_varint(entries, (uint32_t)key_len);
    cairn_buffer_append(entries, key, key_len);
    put_varint(entries, (uint32_t)value_len + 1);
    cairn_buffer_append(entries, value, value_len);
}

void cairn_chunk_put_tombstone(cairn_buffer_t *entries, const void *key, size_t key_len) {
    put_varint(entries, (uint32_t)key_len);
    cairn_buffer_append(entries, key, key_len);
    put_varint(entries, 0);
}

/* ---------------------------------------------------------------------------------------
 * Value codecs
 * ------------------------------------------------------------------------------------- */

/* u64, s64 and f64 alike: their 8 bytes in memory, little-endian in the encoding. */
static void encode_le8(const void *value, cairn_buffer_t *out) {
    uint64_t n;
    memcpy(&n, value, 8);
    uint8_t *to = cairn_buffer_reserve(out, 8);
    for (int i = 0; i < 8; i++) to[i] = (uint8_t)(n >> (8 * i));
    out->len += 8;
}

static int decode_le8(const uint8_t *bytes, size_t len, void *value, const char *type) {
    if (len != 8) return cairn_error("a %s state value has %zu bytes, not 8", type, len);
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= (uint64_t)bytes[i] << (8 * i);
    memcpy(value, &n, 8);
    return CAIRN_OK;
}

static int decode_u64(const uint8_t *bytes, size_t len, void *value) {
    return decode_le8(bytes, len, value, "u64");
}

static int decode_s64(const uint8_t *bytes, size_t len, void *value) {
    return decode_le8(bytes, len, value, "s64");
}

static int decode_f64(const uint8_t *bytes, size_t len, void *value) {
    return decode_le8(bytes, len, value, "f64");
}

const cairn_value_codec_t cairn_codec_u64 = {CAIRN_ENCODING_U64_LE, sizeof(uint64_t),
                                             encode_le8, decode_u64, NULL};
const cairn_value_codec_t cairn_codec_s64 = {CAIRN_ENCODING_S64_LE, sizeof(int64_t),
                                             encode_le8, decode_s64, NULL};
const cairn_value_codec_t cairn_codec_f64 = {CAIRN_ENCODING_F64_LE, sizeof(double), encode_le8,
                                             decode_f64, NULL};

static void encode_buffer(const void *value, cairn_buffer_t *out) {
    const cairn_buffer_t *buf = value;
    cairn_buffer_append(out, buf->ptr, buf->len);
}

static int decode_buffer(const uint8_t *bytes, size_t len, void *value) {
    cairn_buffer_append(value, bytes, len);
    return CAIRN_OK;
}

static void drop_buffer(void *value) { cairn_buffer_free(value); }

const cairn_value_codec_t cairn_codec_bytes = {CAIRN_ENCODING_BYTES, sizeof(cairn_buffer_t),
                                               encode_buffer, decode_buffer, drop_buffer};
const cairn_value_codec_t cairn_codec_utf8 = {CAIRN_ENCODING_UTF8, sizeof(cairn_buffer_t),
                                              encode_buffer, decode_buffer, drop_buffer};
const cairn_value_codec_t cairn_codec_json = {CAIRN_ENCODING_JSON, sizeof(cairn_buffer_t),
                                              encode_buffer, decode_buffer, drop_buffer};

/* ---------------------------------------------------------------------------------------
 * Keyed state: per owned key group, a hash table (open addressing, linear probing) whose
 * keys are copied back to back into one buffer: no allocation per key, and the value sits
 * in the slot beside its key's hash.
 * ------------------------------------------------------------------------------------- */

/* A slot's header; its value (codec->size bytes) follows, 8-byte aligned. */
typedef struct slot {
    uint64_t hash;
    uint32_t at;   /* the key is keys.ptr[at .. at + len1 - 1] */
    uint32_t len1; /* the key's length + 1; 0: a free slot */
} slot_t;

typedef struct key_map {
    uint8_t *slots; /* mask + 1 slots of `stride` bytes; NULL until the first key */
    size_t mask;
    size_t used;
    cairn_buffer_t keys;
    size_t garbage; /* bytes of `keys` whose key was removed */
} key_map_t;

struct cairn_keyed_state {
    const cairn_value_codec_t *codec;
    size_t stride;
    uint32_t first;
    /* One map per owned key group, by key group - first. */
    key_map_t *groups;
    size_t groups_len;
    /* One value's encoding, while snapshotting. */
    cairn_buffer_t scratch;
};

static uint64_t hash_key(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t chunk;
        memcpy(&chunk, p, 8);
        h = (h ^ chunk) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    uint64_t tail = 0;
    if (n) memcpy(&tail, p, n);
    h = (h ^ tail) * 0x94D049BB133111EBull;
    return h ^ (h >> 29);
}

static slot_t *slot_at(const cairn_keyed_state_t *state, const key_map_t *map, size_t i) {
    return (slot_t *)(map->slots + i * state->stride);
}

static void *value_of(slot_t *slot) { return slot + 1; }

/* The slot holding `key`, or the free slot where it would go. */
static slot_t *probe(const cairn_keyed_state_t *state, const key_map_t *map, const void *key,
                     size_t len, uint64_t hash) {
    for (size_t i = hash & map->mask;; i = (i + 1) & map->mask) {
        slot_t *slot = slot_at(state, map, i);
        if (slot->len1 == 0) return slot;
        if (slot->hash == hash && slot->len1 - 1 == len &&
            (len == 0 || memcmp(map->keys.ptr + slot->at, key, len) == 0))
            return slot;
    }
}

/* The slot of `key`, or NULL. */
static slot_t *find(const cairn_keyed_state_t *state, const key_map_t *map, const void *key,
                    size_t len) {
    if (map->used == 0) return NULL;
    slot_t *slot = probe(state, map, key, len, hash_key(key, len));
    return slot->len1 ? slot : NULL;
}

/* Room for `more` keys at a load of at most 3/4. */
static void reserve_slots(const cairn_keyed_state_t *state, key_map_t *map, size_t more) {
    size_t capacity = map->slots ? map->mask + 1 : 0;
    if ((map->used + more) * 4 <= capacity * 3) return;
    size_t grown = capacity ? capacity : 16;
    while ((map->used + more) * 4 > grown * 3) grown *= 2;
    key_map_t fresh = {.slots = calloc(grown, state->stride), .mask = grown - 1};
    if (fresh.slots == NULL) abort();
    for (size_t i = 0; i < capacity; i++) {
        slot_t *slot = slot_at(state, map, i);
        if (slot->len1 == 0) continue;
        size_t j = slot->hash & fresh.mask;
        while (slot_at(state, &fresh, j)->len1) j = (j + 1) & fresh.mask;
        memcpy(slot_at(state, &fresh, j), slot, state->stride);
    }
    free(map->slots);
    map->slots = fresh.slots;
    map->mask = fresh.mask;
}

/* The slot of `key`, added with a zeroed value if new (`*added` says which). */
static slot_t *insert(cairn_keyed_state_t *state, key_map_t *map, const void *key, size_t len,
                      bool *added) {
    reserve_slots(state, map, 1);
    uint64_t hash = hash_key(key, len);
    slot_t *slot = probe(state, map, key, len, hash);
    *added = slot->len1 == 0;
    if (*added) {
        /* A guest's memory is 32-bit: offsets into one buffer of it fit u32. */
        *slot = (slot_t){hash, (uint32_t)map->keys.len, (uint32_t)len + 1};
        cairn_buffer_append(&map->keys, key, len);
        memset(value_of(slot), 0, state->codec->size);
        map->used++;
    }
    return slot;
}

static void drop_value(const cairn_keyed_state_t *state, slot_t *slot) {
    if (state->codec->drop) state->codec->drop(value_of(slot));
}

/* Moves every key to a fresh buffer, without the bytes of removed ones. */
static void compact(const cairn_keyed_state_t *state, key_map_t *map) {
    cairn_buffer_t keys = {0};
    cairn_buffer_reserve(&keys, map->keys.len - map->garbage);
    for (size_t i = 0; i <= map->mask; i++) {
        slot_t *slot = slot_at(state, map, i);
        if (slot->len1 == 0) continue;
        uint32_t at = (uint32_t)keys.len;
        cairn_buffer_append(&keys, map->keys.ptr + slot->at, slot->len1 - 1);
        slot->at = at;
    }
    cairn_buffer_free(&map->keys);
    map->keys = keys;
    map->garbage = 0;
}

/* Removes a slot, shifting back the slots after it that probed past it (no tombstones). */
static void remove_slot(const cairn_keyed_state_t *state, key_map_t *map, slot_t *slot) {
    drop_value(state, slot);
    map->garbage += slot->len1 - 1;
    map->used--;
    size_t hole = (size_t)((uint8_t *)slot - map->slots) / state->stride;
    for (size_t i = (hole + 1) & map->mask;; i = (i + 1) & map->mask) {
        slot_t *next = slot_at(state, map, i);
        if (next->len1 == 0) break;
        size_t home = next->hash & map->mask;
        /* It may fill the hole unless its home lies cyclically in (hole, i]. */
        bool stays = hole <= i ? (home > hole && home <= i) : (home > hole || home <= i);
        if (stays) continue;
        memcpy(slot_at(state, map, hole), next, state->stride);
        hole = i;
    }
    slot_at(state, map, hole)->len1 = 0;
    if (map->garbage > map->keys.len / 2) compact(state, map);
}

static key_map_t *group_map(cairn_keyed_state_t *state, uint32_t group) {
    if (group < state->first || group - state->first >= state->groups_len) {
        cairn_error("key group %u is not this subtask's (it owns key groups %u to %zu): keyed "
                    "state can only hold keys routed here by key",
                    group, state->first, state->first + state->groups_len - 1);
        return NULL;
    }
    return &state->groups[group - state->first];
}

static key_map_t *record_map(cairn_keyed_state_t *state, const cairn_record_t *record) {
    if (!record->has_key_group) {
        cairn_error("keyed state needs records of a by-key input; this one arrived on input "
                    "%u, which is not partitioned by key",
                    record->input);
        return NULL;
    }
    return group_map(state, record->key_group);
}

int cairn_keyed_get(cairn_keyed_state_t *state, const cairn_record_t *record, void **value) {
    key_map_t *map = record_map(state, record);
    if (map == NULL) return CAIRN_ERROR;
    slot_t *slot = find(state, map, record->key.ptr, record->key.len);
    *value = slot ? value_of(slot) : NULL;
    return CAIRN_OK;
}

int cairn_keyed_get_or_insert(cairn_keyed_state_t *state, const cairn_record_t *record,
                              void **value) {
    key_map_t *map = record_map(state, record);
    if (map == NULL) return CAIRN_ERROR;
    bool added;
    *value = value_of(insert(state, map, record->key.ptr, record->key.len, &added));
    return CAIRN_OK;
}

static void put(cairn_keyed_state_t *state, key_map_t *map, const void *key, size_t len,
                const void *value) {
    bool added;
    slot_t *slot = insert(state, map, key, len, &added);
    if (!added) drop_value(state, slot);
    memcpy(value_of(slot), value, state->codec->size);
}

int cairn_keyed_put(cairn_keyed_state_t *state, const cairn_record_t *record, const void *value) {
    key_map_t *map = record_map(state, record);
    if (map == NULL) return CAIRN_ERROR;
    put(state, map, record->key.ptr, record->key.len, value);
    return CAIRN_OK;
}

int cairn_keyed_remove(cairn_keyed_state_t *state, const cairn_record_t *record) {
    key_map_t *map = record_map(state, record);
    if (map == NULL) return CAIRN_ERROR;
    slot_t *slot = find(state, map, record->key.ptr, record->key.len);
    if (slot) remove_slot(state, map, slot);
    return CAIRN_OK;
}

int cairn_keyed_put_key(cairn_keyed_state_t *state, const void *key, size_t key_len,
                        const void *value) {
    cairn_job_list_u8_t wit_key = {(uint8_t *)key, key_len};
    key_map_t *map = group_map(state, cairn_job_keys_key_group(&wit_key));
    if (map == NULL) return CAIRN_ERROR;
    put(state, map, key, key_len, value);
    return CAIRN_OK;
}

size_t cairn_keyed_count(const cairn_keyed_state_t *state) {
    size_t n = 0;
    for (size_t i = 0; i < state->groups_len; i++) n += state->groups[i].used;
    return n;
}

bool cairn_keyed_next(const cairn_keyed_state_t *state, cairn_keyed_iter_t *it,
                      cairn_bytes_t *key, void **value) {
    for (; it->group < state->groups_len; it->group++, it->slot = 0) {
        const key_map_t *map = &state->groups[it->group];
        for (; map->used && it->slot <= map->mask; it->slot++) {
            slot_t *slot = slot_at(state, map, it->slot);
            if (slot->len1 == 0) continue;
            *key = (cairn_bytes_t){map->keys.ptr + slot->at, slot->len1 - 1};
            *value = value_of(slot);
            it->slot++;
            return true;
        }
    }
    return false;
}

int cairn_keyed_restore_chunk(cairn_keyed_state_t *state, const cairn_keyed_chunk_t *chunk) {
    key_map_t *map = group_map(state, chunk->key_group);
    if (map == NULL) return CAIRN_ERROR;
    /* Count (and check) first, so that the table and the key buffer grow once. */
    size_t pos = 0, count = 0;
    cairn_chunk_entry_t entry;
    int more;
    while ((more = cairn_chunk_next(chunk->entries, &pos, &entry)) == 1) count++;
    if (more != 0) return CAIRN_ERROR;
    reserve_slots(state, map, count);
    cairn_buffer_reserve(&map->keys, chunk->entries.len);
    for (pos = 0; cairn_chunk_next(chunk->entries, &pos, &entry) == 1;) {
        if (entry.tombstone) continue;
        bool added;
        slot_t *slot = insert(state, map, entry.key.ptr, entry.key.len, &added);
        if (!added) {
            drop_value(state, slot);
            memset(value_of(slot), 0, state->codec->size);
        }
        if (state->codec->decode(entry.value.ptr, entry.value.len, value_of(slot)) != CAIRN_OK)
            return CAIRN_ERROR;
    }
    return CAIRN_OK;
}

static cairn_keyed_state_t *keyed_state_new(const cairn_value_codec_t *codec,
                                            const cairn_context_t *ctx) {
    cairn_keyed_state_t *state = xrealloc(NULL, sizeof *state);
    size_t groups = ctx->key_group_last + 1 - ctx->key_group_first;
    *state = (cairn_keyed_state_t){
        .codec = codec,
        .stride = sizeof(slot_t) + ((codec->size + 7) & ~(size_t)7),
        .first = ctx->key_group_first,
        .groups = calloc(groups, sizeof(key_map_t)),
        .groups_len = groups,
    };
    if (state->groups == NULL) abort();
    return state;
}

static void keyed_state_free(cairn_keyed_state_t *state) {
    for (size_t g = 0; g < state->groups_len; g++) {
        key_map_t *map = &state->groups[g];
        for (size_t i = 0; map->used && i <= map->mask; i++) {
            slot_t *slot = slot_at(state, map, i);
            if (slot->len1) drop_value(state, slot);
        }
        free(map->slots);
        cairn_buffer_free(&map->keys);
    }
    free(state->groups);
    cairn_buffer_free(&state->scratch);
    free(state);
}

/* One chunk per key group that has keys, each written in one pass over its table. */
static void keyed_snapshot(cairn_keyed_state_t *state, cairn_job_types_list_keyed_chunk_t *out) {
    size_t chunks = 0;
    for (size_t g = 0; g < state->groups_len; g++) chunks += state->groups[g].used != 0;
    *out = (cairn_job_types_list_keyed_chunk_t){NULL, 0};
    if (chunks == 0) return;
    out->ptr = xrealloc(NULL, chunks * sizeof *out->ptr);
    for (size_t g = 0; g < state->groups_len; g++) {
        key_map_t *map = &state->groups[g];
        if (map->used == 0) continue;
        /* Keys, fixed-size values and 10 bytes of lengths an entry: grown once at most. */
        cairn_buffer_t entries = {0};
        cairn_buffer_reserve(&entries, map->keys.len - map->garbage +
                                           map->used * (10 + state->codec->size));
        for (size_t i = 0; i <= map->mask; i++) {
            slot_t *slot = slot_at(state, map, i);
            if (slot->len1 == 0) continue;
            state->scratch.len = 0;
            state->codec->encode(value_of(slot), &state->scratch);
            cairn_chunk_put(&entries, map->keys.ptr + slot->at, slot->len1 - 1,
                            state->scratch.ptr, state->scratch.len);
        }
        /* Key groups are below max-parallelism, at most 2^15. */
        out->ptr[out->len++] = (cairn_job_types_keyed_chunk_t){
            (uint16_t)(state->first + g), {entries.ptr, entries.len}};
    }
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

bool cairn_args_flag(const cairn_args_t *args, const char *name) {
    for (size_t i = 0; i < args->len; i++)
        if (strcmp(args->argv[i], name) == 0) return true;
    return false;
}

const char *cairn_args_required(const cairn_args_t *args, const char *name) {
    const char *value = cairn_args_value(args, name);
    if (value == NULL) cairn_error("missing required argument %s", name);
    return value;
}

/* `raw` (NULL: absent, `fallback`) as an unsigned decimal integer; `what` names it in the
 * error ("--rate", "option window"). */
static int parse_u64(const char *raw, const char *what, uint64_t fallback, uint64_t *value) {
    if (raw == NULL) {
        *value = fallback;
        return CAIRN_OK;
    }
    uint64_t n = 0;
    const char *p = raw;
    if (*p == 0) return cairn_error("invalid value \"%s\" for %s: not a number", raw, what);
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || n > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return cairn_error("invalid value \"%s\" for %s: not a number", raw, what);
        n = n * 10 + (uint64_t)(*p - '0');
    }
    *value = n;
    return CAIRN_OK;
}

int cairn_args_u64(const cairn_args_t *args, const char *name, uint64_t fallback,
                   uint64_t *value) {
    return parse_u64(cairn_args_value(args, name), name, fallback, value);
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
    return (cairn_stream_t){.graph = graph, .index = nodes->len - 1};
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

/* The connection options the Kafka source and sink share. */
static cairn_stream_t kafka_options(cairn_stream_t node, const char *bootstrap_servers,
                                    const char *topic) {
    cairn_stream_option(node, "properties.bootstrap.servers", bootstrap_servers);
    return cairn_stream_option(node, "topic", topic);
}

cairn_stream_t cairn_source_kafka(cairn_graph_t *graph, const char *uid,
                                  const char *bootstrap_servers, const char *topic) {
    return kafka_options(cairn_graph_source(graph, uid, "kafka"), bootstrap_servers, topic);
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
    if (upstream.side_output)
        input->side_output = (cairn_job_option_string_t){true, wit_string(upstream.side_output)};
    return node;
}

cairn_stream_t cairn_stream_side_output(cairn_stream_t node, const char *name) {
    node.side_output = name;
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

cairn_stream_t cairn_sink_kafka(cairn_stream_t upstream, const char *uid,
                                const char *bootstrap_servers, const char *topic,
                                cairn_partitioning_t partitioning) {
    return kafka_options(cairn_stream_sink(upstream, uid, "kafka", partitioning),
                         bootstrap_servers, topic);
}

cairn_stream_t cairn_stream_parallelism(cairn_stream_t node, uint32_t parallelism) {
    node_of(node)->parallelism = (cairn_job_option_u32_t){true, parallelism};
    return node;
}

cairn_stream_t cairn_stream_option(cairn_stream_t node, const char *key, const char *value) {
    push_option(&node_of(node)->options, key, value);
    return node;
}

cairn_stream_t cairn_stream_watermarks(cairn_stream_t node, uint64_t max_out_of_orderness_ms) {
    cairn_job_types_option_watermark_strategy_t *watermarks = &node_of(node)->watermarks;
    watermarks->is_some = true;
    watermarks->val.max_out_of_orderness_ms = max_out_of_orderness_ms;
    return node;
}

cairn_stream_t cairn_stream_idleness(cairn_stream_t node, uint64_t idle_timeout_ms) {
    cairn_job_types_option_watermark_strategy_t *watermarks = &node_of(node)->watermarks;
    watermarks->is_some = true;
    watermarks->val.idle_timeout_ms = (cairn_job_option_u64_t){true, idle_timeout_ms};
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

typedef int (*process_fn)(void *self, const cairn_record_t *record, cairn_emitter_t *out);
typedef int (*on_timer_fn)(void *self, cairn_time_domain_t domain, const cairn_record_t *timer,
                           cairn_emitter_t *out);

/* The `operator` resource: one running operator subtask. */
struct exports_cairn_job_job_operator_t {
    const cairn_operator_t *op;
    /* The operator's callbacks, or the window operator's (window.c) when `op->window`. */
    process_fn process;
    on_timer_fn on_timer;
    void *self;
    cairn_context_t ctx;
    cairn_emitter_t out;
    /* The operator's keyed state, when it keeps one (ctx.keyed_state too). */
    cairn_keyed_state_t *keyed;
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

int cairn_context_option_u64(const cairn_context_t *ctx, const char *name, uint64_t fallback,
                             uint64_t *value) {
    const char *raw = cairn_context_option(ctx, name);
    size_t len = strlen("option ") + strlen(name) + 1;
    char *what = xrealloc(NULL, len);
    snprintf(what, len, "option %s", name);
    int status = parse_u64(raw, what, fallback, value);
    free(what);
    return status;
}

/* A window operator's definition sets nothing the SDK implements for it. */
static int check_window_operator(const cairn_operator_t *op) {
    if (op->size || op->open || op->process || op->on_timer || op->finish || op->snapshot ||
        op->restore_keyed || op->restore || op->restored || op->checkpoint_complete ||
        op->close || op->keyed_values || op->restores_other_versions)
        return cairn_error("operator \"%s\" is a window operator (its window is set): it takes "
                           "a name, the window and a state_version, and the SDK does the rest",
                           op->name);
    return CAIRN_OK;
}

/* The codec of the operator's keyed state values, if it keeps any: a window operator keeps
 * each key's windows (window.c). */
static const cairn_value_codec_t *keyed_codec(const cairn_operator_t *op) {
    return op->window ? &cairn__window_panes_codec : op->keyed_values;
}

static void instance_free(exports_cairn_job_job_operator_t *instance) {
    if (instance->op->close && instance->self) instance->op->close(instance->self);
    free(instance->self);
    if (instance->keyed) keyed_state_free(instance->keyed);
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
    int status = CAIRN_OK;
    if (op == NULL)
        status = cairn_error("this job has no operator named \"%s\"", name);
    else if (op->window)
        status = check_window_operator(op);
    else if (op->process == NULL)
        status = cairn_error("operator \"%s\" has no process callback", name);
    free(name);
    if (status != CAIRN_OK) {
        cairn_job_types_context_free(wit_ctx);
        take_error(err, "open", NULL);
        return false;
    }

    exports_cairn_job_job_operator_t *instance = xrealloc(NULL, sizeof *instance);
    *instance = (exports_cairn_job_job_operator_t){
        .op = op,
        .process = op->window ? cairn__window_process : op->process,
        .on_timer = op->window ? cairn__window_on_timer : op->on_timer,
    };
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
    ctx->max_parallelism = wit_ctx->max_parallelism;
    ctx->key_group_first = wit_ctx->key_groups.first;
    ctx->key_group_last = wit_ctx->key_groups.last;
    cairn_job_types_context_free(wit_ctx);
    const cairn_value_codec_t *codec = keyed_codec(op);
    if (codec) ctx->keyed_state = instance->keyed = keyed_state_new(codec, ctx);

    size_t size = op->window ? cairn__window_size : op->size;
    if (size) {
        instance->self = xrealloc(NULL, size);
        memset(instance->self, 0, size);
    }
    if (op->window && cairn__window_open(instance->self, op->window, ctx) != CAIRN_OK) {
        take_error(err, "open", op->name);
        instance_free(instance);
        return false;
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
                         const cairn_job_types_packed_batch_t *batch,
                         const cairn_job_list_u16_t *key_groups) {
    if (check_batch(batch) != CAIRN_OK) return CAIRN_ERROR;
    if (key_groups->len != 0 && key_groups->len != batch->offsets.len / 2)
        return cairn_error("malformed batch: key groups do not match records");
    const uint8_t *data = batch->data.ptr;
    const uint32_t *offsets = batch->offsets.ptr;
    const int64_t *timestamps = batch->timestamps.len ? batch->timestamps.ptr : NULL;
    size_t n = batch->offsets.len / 2;
    process_fn process = instance->process;
    cairn_record_t record = {.input = input, .has_key_group = key_groups->len != 0};
    uint32_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key_end = offsets[2 * i], value_end = offsets[2 * i + 1];
        record.key = (cairn_bytes_t){data + start, key_end - start};
        record.value = (cairn_bytes_t){data + key_end, value_end - key_end};
        record.has_timestamp = timestamps && timestamps[i] != NO_TIMESTAMP;
        record.timestamp = record.has_timestamp ? timestamps[i] : 0;
        if (record.has_key_group) record.key_group = key_groups->ptr[i];
        if (process(instance->self, &record, &instance->out) != CAIRN_OK) return CAIRN_ERROR;
        start = value_end;
    }
    return CAIRN_OK;
}

bool exports_cairn_job_job_method_operator_process(exports_cairn_job_job_borrow_operator_t instance,
                                                   uint32_t input,
                                                   exports_cairn_job_job_packed_batch_t *batch,
                                                   cairn_job_list_u16_t *key_groups,
                                                   exports_cairn_job_job_packed_batch_t *ret,
                                                   cairn_job_string_t *err) {
    clear_error();
    watermark_known = false;
    int status = process_batch(instance, input, batch, key_groups);
    cairn_job_types_packed_batch_free(batch);
    cairn_job_list_u16_free(key_groups);
    side_outputs_end(status == CAIRN_OK);
    watermark_known = false;
    if (status != CAIRN_OK) {
        emitter_clear(&instance->out);
        take_error(err, "process", instance->op->name);
        return false;
    }
    emitter_take(&instance->out, ret);
    return true;
}

/* Calls `on_timer` once per timer of `timers` (a record each: its key and timestamp), in
 * order, with its key group. */
static int fire_timers(exports_cairn_job_job_operator_t *instance, cairn_time_domain_t domain,
                       const cairn_job_types_packed_batch_t *timers,
                       const cairn_job_list_u16_t *key_groups) {
    if (check_batch(timers) != CAIRN_OK) return CAIRN_ERROR;
    size_t n = timers->offsets.len / 2;
    if (n == 0) return CAIRN_OK;
    if (instance->on_timer == NULL)
        return cairn_error("timers fired for operator \"%s\", which has no on_timer callback",
                           instance->op->name);
    if (key_groups->len != n || timers->timestamps.len != n)
        return cairn_error("malformed timers: %zu timers, %zu key groups, %zu timestamps", n,
                           key_groups->len, timers->timestamps.len);
    const uint8_t *data = timers->data.ptr;
    const uint32_t *offsets = timers->offsets.ptr;
    cairn_record_t timer = {.has_timestamp = true, .has_key_group = true};
    uint32_t start = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t key_end = offsets[2 * i], value_end = offsets[2 * i + 1];
        timer.key = (cairn_bytes_t){data + start, key_end - start};
        timer.value = (cairn_bytes_t){data + key_end, value_end - key_end};
        timer.timestamp = timers->timestamps.ptr[i];
        if (timer.timestamp == NO_TIMESTAMP)
            return cairn_error("the host fired a timer without a timestamp");
        timer.key_group = key_groups->ptr[i];
        if (instance->on_timer(instance->self, domain, &timer, &instance->out) != CAIRN_OK)
            return CAIRN_ERROR;
        start = value_end;
    }
    return CAIRN_OK;
}

bool exports_cairn_job_job_method_operator_on_timer(exports_cairn_job_job_borrow_operator_t instance,
                                                    exports_cairn_job_job_time_domain_t domain,
                                                    exports_cairn_job_job_packed_batch_t *timers,
                                                    cairn_job_list_u16_t *key_groups,
                                                    exports_cairn_job_job_packed_batch_t *ret,
                                                    cairn_job_string_t *err) {
    clear_error();
    watermark_known = false;
    int status = fire_timers(instance, (cairn_time_domain_t)domain, timers, key_groups);
    cairn_job_types_packed_batch_free(timers);
    cairn_job_list_u16_free(key_groups);
    side_outputs_end(status == CAIRN_OK);
    watermark_known = false;
    if (status != CAIRN_OK) {
        emitter_clear(&instance->out);
        take_error(err, "on_timer", instance->op->name);
        return false;
    }
    emitter_take(&instance->out, ret);
    return true;
}

bool exports_cairn_job_job_method_operator_finish(exports_cairn_job_job_borrow_operator_t instance,
                                                  exports_cairn_job_job_packed_batch_t *ret,
                                                  cairn_job_string_t *err) {
    clear_error();
    watermark_known = false;
    int status = instance->op->finish ? instance->op->finish(instance->self, &instance->out)
                                      : CAIRN_OK;
    side_outputs_end(status == CAIRN_OK);
    watermark_known = false;
    if (status != CAIRN_OK) {
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
                                                    exports_cairn_job_job_snapshot_t *ret,
                                                    cairn_job_string_t *err) {
    (void)checkpoint_id;
    clear_error();
    const cairn_operator_t *op = instance->op;
    *ret = (exports_cairn_job_job_snapshot_t){
        .version = state_version(op),
        .operator_state_mode = (cairn_job_types_operator_state_mode_t)op->operator_state_mode,
        .value_encoding = (cairn_job_types_value_encoding_t)(
            instance->keyed ? instance->keyed->codec->encoding : CAIRN_ENCODING_BYTES),
    };
    if (op->snapshot) {
        cairn_buffer_t item = {0};
        if (op->snapshot(instance->self, &item) != CAIRN_OK) {
            cairn_buffer_free(&item);
            take_error(err, "snapshot", op->name);
            return false;
        }
        if (item.len) {
            ret->operator_state.ptr = xrealloc(NULL, sizeof *ret->operator_state.ptr);
            ret->operator_state.ptr[0] = (cairn_job_list_u8_t){item.ptr, item.len};
            ret->operator_state.len = 1;
        } else {
            cairn_buffer_free(&item);
        }
    }
    if (instance->keyed) keyed_snapshot(instance->keyed, &ret->keyed);
    return true;
}

static int refuse_version(const cairn_operator_t *op, uint32_t version) {
    return cairn_error("the state is in encoding version %u, operator \"%s\" reads version %u; "
                       "set restores_other_versions and handle version %u in restore_keyed and "
                       "restore to migrate it",
                       version, op->name, state_version(op), version);
}

static int restore_chunk(exports_cairn_job_job_operator_t *instance,
                         const cairn_job_types_keyed_chunk_t *wit_chunk, uint32_t version) {
    const cairn_operator_t *op = instance->op;
    bool own = version == state_version(op);
    if (!own && !op->restores_other_versions) return refuse_version(op, version);
    cairn_keyed_chunk_t chunk = {wit_chunk->key_group,
                                 {wit_chunk->entries.ptr, wit_chunk->entries.len}};
    if (op->restore_keyed) return op->restore_keyed(instance->self, &chunk, version);
    if (instance->keyed == NULL)
        return cairn_error("the state has keyed state for operator \"%s\", which keeps none "
                           "(its keyed_values and window are NULL)",
                           op->name);
    if (!own)
        return cairn_error("the keyed state is in encoding version %u, operator \"%s\" reads "
                           "version %u; set restore_keyed to migrate it",
                           version, op->name, state_version(op));
    return cairn_keyed_restore_chunk(instance->keyed, &chunk);
}

bool exports_cairn_job_job_method_operator_restore_keyed(
    exports_cairn_job_job_borrow_operator_t instance, uint32_t version,
    exports_cairn_job_job_list_keyed_chunk_t *chunks, cairn_job_string_t *err) {
    clear_error();
    int status = CAIRN_OK;
    for (size_t i = 0; status == CAIRN_OK && i < chunks->len; i++)
        status = restore_chunk(instance, &chunks->ptr[i], version);
    exports_cairn_job_job_list_keyed_chunk_free(chunks);
    if (status != CAIRN_OK) {
        take_error(err, "restore_keyed", instance->op->name);
        return false;
    }
    return true;
}

static int restore_items(exports_cairn_job_job_operator_t *instance, uint32_t version,
                         const cairn_job_list_list_u8_t *items) {
    const cairn_operator_t *op = instance->op;
    for (size_t i = 0; i < items->len; i++) {
        if (op->restore == NULL)
            return cairn_error("operator \"%s\" keeps no operator-wide state (it has no "
                               "restore), but was handed some, of encoding version %u",
                               op->name, version);
        if (version != state_version(op) && !op->restores_other_versions)
            return refuse_version(op, version);
        if (op->restore(instance->self, items->ptr[i].ptr, items->ptr[i].len, version) !=
            CAIRN_OK)
            return CAIRN_ERROR;
    }
    return op->restored ? op->restored(instance->self) : CAIRN_OK;
}

bool exports_cairn_job_job_method_operator_restore(exports_cairn_job_job_borrow_operator_t instance,
                                                   uint32_t version,
                                                   cairn_job_list_list_u8_t *operator_state,
                                                   cairn_job_string_t *err) {
    clear_error();
    int status = restore_items(instance, version, operator_state);
    cairn_job_list_list_u8_free(operator_state);
    if (status != CAIRN_OK) {
        take_error(err, "restore", instance->op->name);
        return false;
    }
    return true;
}

void exports_cairn_job_job_method_operator_checkpoint_complete(
    exports_cairn_job_job_borrow_operator_t instance, uint64_t checkpoint_id) {
    if (instance->op->checkpoint_complete)
        instance->op->checkpoint_complete(instance->self, checkpoint_id);
}
