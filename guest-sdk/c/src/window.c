/*
 * window.c: windows over event time, Flink's WindowOperator with its EventTimeTrigger, for an
 * incremental aggregate per key and window (see "Windows" in cairn.h). The rules are the Rust
 * SDK's (guest-sdk/rust/src/window.rs): the same assignment, lateness, timers and firings.
 *
 * A key's windows are one value of the operator's keyed state, a cairn_buffer_t of panes
 * ordered by window (start, then end): each pane the window (start and end, s64) followed by
 * its accumulator, `acc_size` bytes padded to a multiple of 8. Encoded in checkpoints as
 * those bytes after a 4-byte tag, so that another encoding (another language's window
 * operator's) is refused rather than misread.
 */
#include <string.h>

#include "window.h"

typedef struct window_operator {
    const cairn_aggregate_t *aggregate;
    cairn_windows_t windows;
    /* Per key, its panes (a cairn_buffer_t): the operator's keyed state. */
    cairn_keyed_state_t *panes;
    /* Bytes of a pane: the window, then the accumulator padded to 8 bytes. */
    size_t stride;
} window_operator_t;

const size_t cairn__window_size = sizeof(window_operator_t);

/* ---------------------------------------------------------------------------------------
 * Windows: assignment and lateness
 * ------------------------------------------------------------------------------------- */

static int positive_ms(uint64_t value, const char *what, int64_t *ms) {
    if (value == 0 || value > INT64_MAX)
        return cairn_error("a window's %s must be 1 ms or more (below 2^63), not %llu", what,
                           (unsigned long long)value);
    *ms = (int64_t)value;
    return CAIRN_OK;
}

int cairn_windows_sliding(cairn_windows_t *windows, uint64_t size_ms, uint64_t slide_ms) {
    int64_t size = 0, slide = 0;
    if (positive_ms(size_ms, "size", &size) != CAIRN_OK ||
        positive_ms(slide_ms, "slide", &slide) != CAIRN_OK)
        return CAIRN_ERROR;
    if (slide > size)
        return cairn_error("a sliding window's slide (%lld ms) cannot be longer than its size "
                           "(%lld ms)",
                           (long long)slide, (long long)size);
    *windows = (cairn_windows_t){.kind = CAIRN_WINDOWS_SLIDING, .size = size, .slide = slide};
    return CAIRN_OK;
}

int cairn_windows_session(cairn_windows_t *windows, uint64_t gap_ms) {
    int64_t gap = 0;
    if (positive_ms(gap_ms, "gap", &gap) != CAIRN_OK) return CAIRN_ERROR;
    *windows = (cairn_windows_t){.kind = CAIRN_WINDOWS_SESSION, .size = gap};
    return CAIRN_OK;
}

int cairn_windows_tumbling(cairn_windows_t *windows, uint64_t size_ms) {
    return cairn_windows_sliding(windows, size_ms, size_ms);
}

/* `a + b` and `a - b` for `b >= 0`, stopping at the ends of the s64 range. */
static int64_t saturating_add(int64_t a, int64_t b) {
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

static int64_t saturating_sub(int64_t a, int64_t b) {
    return a < INT64_MIN + b ? INT64_MIN : a - b;
}

/* The window starting at `start` (a session window: a record's at `start`). */
static cairn_window_t window_at(const window_operator_t *op, int64_t start) {
    return (cairn_window_t){start, saturating_add(start, op->windows.size)};
}

/* The start of the latest window a record at `timestamp` is in: the record is in those
 * starting there and every `slide` before, while they start after `timestamp - size`. A
 * window reaching below the smallest timestamp starts there. */
static int64_t latest_start(const window_operator_t *op, int64_t timestamp) {
    int64_t rem = timestamp % op->windows.slide;
    return saturating_sub(timestamp, rem < 0 ? rem + op->windows.slide : rem); /* Euclidean */
}

static int64_t max_timestamp(cairn_window_t window) { return window.end - 1; }

/* When the state of `window` is freed: its last millisecond plus the allowed lateness. */
static int64_t cleanup_time(const window_operator_t *op, cairn_window_t window) {
    return saturating_add(max_timestamp(window), op->windows.allowed_lateness);
}

/* Whether `window` is past its allowed lateness at `watermark` (Flink's isWindowLate). */
static bool is_late(const window_operator_t *op, cairn_window_t window, int64_t watermark) {
    return cleanup_time(op, window) <= watermark;
}

/* ---------------------------------------------------------------------------------------
 * A key's panes
 * ------------------------------------------------------------------------------------- */

/* The tag a key's encoded panes start with. */
static const uint8_t PANES_TAG[4] = {'C', 'W', 'P', '1'};

static void encode_panes(const void *value, cairn_buffer_t *out) {
    const cairn_buffer_t *panes = value;
    cairn_buffer_append(out, PANES_TAG, sizeof PANES_TAG);
    cairn_buffer_append(out, panes->ptr, panes->len);
}

static int decode_panes(const uint8_t *bytes, size_t len, void *value) {
    if (len < sizeof PANES_TAG || memcmp(bytes, PANES_TAG, sizeof PANES_TAG) != 0)
        return cairn_error("a key's windows in the state are not in the encoding of the C and "
                           "Zig SDKs' window operator (written by another language's?)");
    cairn_buffer_append(value, bytes + sizeof PANES_TAG, len - sizeof PANES_TAG);
    return CAIRN_OK;
}

static void drop_panes(void *value) { cairn_buffer_free(value); }

const cairn_value_codec_t cairn__window_panes_codec = {
    CAIRN_ENCODING_BYTES, sizeof(cairn_buffer_t), encode_panes, decode_panes, drop_panes};

static int check_panes(const window_operator_t *op, const cairn_buffer_t *panes) {
    if (panes->len % op->stride)
        return cairn_error("a key's windows in the state are %zu bytes, not a whole number of "
                           "%zu-byte panes: the state was written with another accumulator "
                           "size (raise state_version when it changes)",
                           panes->len, op->stride);
    return CAIRN_OK;
}

static uint8_t *pane_at(const window_operator_t *op, const cairn_buffer_t *panes, size_t i) {
    return panes->ptr + i * op->stride;
}

static cairn_window_t pane_window(const uint8_t *pane) {
    cairn_window_t window;
    memcpy(&window, pane, sizeof window);
    return window;
}

static void *pane_acc(uint8_t *pane) { return pane + sizeof(cairn_window_t); }

static bool window_before(cairn_window_t a, cairn_window_t b) {
    return a.start < b.start || (a.start == b.start && a.end < b.end);
}

/* Whether the two overlap or touch (session windows merge then, as in Flink). */
static bool window_meets(cairn_window_t a, cairn_window_t b) {
    return a.start <= b.end && b.start <= a.end;
}

static bool window_covers(cairn_window_t outer, cairn_window_t inner) {
    return outer.start <= inner.start && inner.end <= outer.end;
}

/* The index of the pane of `window`, inserted in order with a zeroed accumulator when new
 * (`*added`). */
static size_t pane_of(const window_operator_t *op, cairn_buffer_t *panes, cairn_window_t window,
                      bool *added) {
    size_t lo = 0, hi = panes->len / op->stride;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (window_before(pane_window(pane_at(op, panes, mid)), window))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < panes->len / op->stride) {
        cairn_window_t found = pane_window(pane_at(op, panes, lo));
        *added = found.start != window.start || found.end != window.end;
        if (!*added) return lo;
    }
    *added = true;
    cairn_buffer_reserve(panes, op->stride);
    uint8_t *pane = pane_at(op, panes, lo);
    memmove(pane + op->stride, pane, panes->len - lo * op->stride);
    memset(pane, 0, op->stride);
    memcpy(pane, &window, sizeof window);
    panes->len += op->stride;
    return lo;
}

/* Merges session window `window` with every pane it meets, directly or through others, into
 * one pane (the first met keeps its accumulator, the others' merged into it, in the order
 * they are met); sets `*index` to it, and `*added` when it is a new window (its timers are
 * not set): panes never meet each other, so the merged window is an old one only when
 * `window` lies within it. */
static int merge_session(const window_operator_t *op, cairn_buffer_t *panes,
                         cairn_window_t window, size_t *index, bool *added) {
    cairn_window_t merged = window;
    size_t base = SIZE_MAX;
    *added = true;
    for (;;) {
        size_t n = panes->len / op->stride, i = 0;
        while (i < n && (i == base || !window_meets(pane_window(pane_at(op, panes, i)), merged)))
            i++;
        if (i == n) break;
        cairn_window_t met = pane_window(pane_at(op, panes, i));
        *added = *added && !window_covers(met, merged);
        merged = (cairn_window_t){met.start < merged.start ? met.start : merged.start,
                                  met.end > merged.end ? met.end : merged.end};
        if (base == SIZE_MAX) {
            base = i;
            continue;
        }
        if (op->aggregate->merge(pane_acc(pane_at(op, panes, base)),
                                 pane_acc(pane_at(op, panes, i))) != CAIRN_OK)
            return CAIRN_ERROR;
        memmove(pane_at(op, panes, i), pane_at(op, panes, i + 1), (n - i - 1) * op->stride);
        panes->len -= op->stride;
        if (i < base) base--;
    }
    if (base == SIZE_MAX) {
        bool fresh;
        *index = pane_of(op, panes, merged, &fresh);
    } else {
        /* The panes left are all before or all after the merged window: it stays in order. */
        memcpy(pane_at(op, panes, base), &merged, sizeof merged);
        *index = base;
    }
    return CAIRN_OK;
}

/* Whether `window` meets one of the panes. */
static bool meets_a_pane(const window_operator_t *op, const cairn_buffer_t *panes,
                         cairn_window_t window) {
    for (size_t i = 0; i < panes->len / op->stride; i++)
        if (window_meets(pane_window(pane_at(op, panes, i)), window)) return true;
    return false;
}

/* ---------------------------------------------------------------------------------------
 * The operator
 * ------------------------------------------------------------------------------------- */

int cairn__window_open(void *self, const cairn_aggregate_t *aggregate,
                       const cairn_context_t *ctx) {
    window_operator_t *op = self;
    if (aggregate->windows == NULL || aggregate->add == NULL || aggregate->emit == NULL)
        return cairn_error("the aggregate of window operator %s needs its windows, add and emit "
                           "callbacks",
                           ctx->operator_uid);
    *op = (window_operator_t){
        .aggregate = aggregate,
        .panes = ctx->keyed_state,
        .stride = sizeof(cairn_window_t) + ((aggregate->acc_size + 7) & ~(size_t)7),
    };
    if (aggregate->windows(ctx, &op->windows) != CAIRN_OK) return CAIRN_ERROR;
    const cairn_windows_t *w = &op->windows;
    bool session = w->kind == CAIRN_WINDOWS_SESSION;
    if (w->size <= 0 || (!session && (w->slide <= 0 || w->slide > w->size)) ||
        w->allowed_lateness < 0)
        return cairn_error("the windows of operator %s are not set: its aggregate's windows "
                           "callback calls cairn_windows_tumbling, _sliding or _session (and "
                           "sets an allowed_lateness of 0 or more)",
                           ctx->operator_uid);
    if (session && aggregate->merge == NULL)
        return cairn_error("session windows merge accumulators: the aggregate of window "
                           "operator %s needs its merge callback",
                           ctx->operator_uid);
    return CAIRN_OK;
}

/* Emits `window`'s result for `key`, stamped with the window's last millisecond. */
static int fire(const window_operator_t *op, cairn_bytes_t key, cairn_window_t window,
                const void *acc, cairn_emitter_t *out) {
    size_t first = cairn_emit_count(out);
    if (op->aggregate->emit(key, window, acc, out) != CAIRN_OK) return CAIRN_ERROR;
    cairn_emit_stamp(out, first, max_timestamp(window));
    return CAIRN_OK;
}

/* Registers the timers a new `window` of `key` needs at `watermark`: when it fires (unless
 * the watermark is past that: it fires at once) and when its state goes. */
static int register_timers(const window_operator_t *op, cairn_bytes_t key, cairn_window_t window,
                           int64_t watermark) {
    int64_t fire = max_timestamp(window), cleanup = cleanup_time(op, window);
    if (fire > watermark &&
        cairn_timer_register(CAIRN_EVENT_TIME, key.ptr, key.len, fire) != CAIRN_OK)
        return CAIRN_ERROR;
    if (cleanup != fire &&
        cairn_timer_register(CAIRN_EVENT_TIME, key.ptr, key.len, cleanup) != CAIRN_OK)
        return CAIRN_ERROR;
    return CAIRN_OK;
}

/* A record behind every window it could be in: dropped and counted, or sent on. */
static int late(const window_operator_t *op, const cairn_record_t *record) {
    if (op->windows.late_output)
        cairn_emit_record(cairn_side_output(op->windows.late_output), record);
    else
        cairn_counter_add(CAIRN_LATE_RECORDS_DROPPED, 1);
    return CAIRN_OK;
}

/* Adds `record` to the pane at `index`: its timers when the window is `added`, and fired again
 * at once when it already fired (within the allowed lateness). */
static int add_to_pane(const window_operator_t *op, const cairn_record_t *record,
                       cairn_buffer_t *panes, size_t index, bool added, int64_t watermark,
                       cairn_emitter_t *out) {
    uint8_t *pane = pane_at(op, panes, index);
    cairn_window_t window = pane_window(pane);
    if (op->aggregate->add(pane_acc(pane), record) != CAIRN_OK ||
        (added && register_timers(op, record->key, window, watermark) != CAIRN_OK))
        return CAIRN_ERROR;
    if (max_timestamp(window) <= watermark)
        return fire(op, record->key, window, pane_acc(pane), out);
    return CAIRN_OK;
}

/* Tumbling and sliding windows: the record's windows not late, each its own pane. */
static int add_to_windows(const window_operator_t *op, const cairn_record_t *record,
                          int64_t watermark, cairn_emitter_t *out) {
    int64_t timestamp = record->timestamp, latest = latest_start(op, timestamp);
    /* The latest window is the last to be late: when it is, all the record's windows are. */
    if (is_late(op, window_at(op, latest), watermark)) return late(op, record);
    cairn_buffer_t *panes;
    if (cairn_keyed_get_or_insert(op->panes, record, (void **)&panes) != CAIRN_OK ||
        check_panes(op, panes) != CAIRN_OK)
        return CAIRN_ERROR;
    int64_t first = saturating_sub(timestamp, op->windows.size);
    for (int64_t start = latest;;) {
        cairn_window_t window = window_at(op, start);
        if (!is_late(op, window, watermark)) {
            bool added;
            size_t index = pane_of(op, panes, window, &added);
            if (add_to_pane(op, record, panes, index, added, watermark, out) != CAIRN_OK)
                return CAIRN_ERROR;
        }
        int64_t earlier;
        if (__builtin_sub_overflow(start, op->windows.slide, &earlier) || earlier <= first)
            return CAIRN_OK;
        start = earlier;
    }
}

/* Session windows: the record's window merged with the key's windows it meets first (as
 * Flink merges before it checks lateness), so that it is late only when it meets none of the
 * open windows (theirs are not late: their cleanup timers have not fired). */
static int add_to_session(const window_operator_t *op, const cairn_record_t *record,
                          int64_t watermark, cairn_emitter_t *out) {
    cairn_window_t window = window_at(op, record->timestamp);
    cairn_buffer_t *panes;
    if (cairn_keyed_get(op->panes, record, (void **)&panes) != CAIRN_OK ||
        (panes && check_panes(op, panes) != CAIRN_OK))
        return CAIRN_ERROR;
    if (is_late(op, window, watermark) && !(panes && meets_a_pane(op, panes, window)))
        return late(op, record);
    if (panes == NULL && cairn_keyed_get_or_insert(op->panes, record, (void **)&panes) != CAIRN_OK)
        return CAIRN_ERROR;
    size_t index;
    bool added;
    if (merge_session(op, panes, window, &index, &added) != CAIRN_OK) return CAIRN_ERROR;
    return add_to_pane(op, record, panes, index, added, watermark, out);
}

int cairn__window_process(void *self, const cairn_record_t *record, cairn_emitter_t *out) {
    const window_operator_t *op = self;
    if (!record->has_timestamp)
        return cairn_error("a record without a timestamp reached an event-time window: give its "
                           "source a timestamp per record (and a watermark strategy)");
    int64_t watermark = cairn_current_watermark();
    if (op->windows.kind == CAIRN_WINDOWS_SESSION)
        return add_to_session(op, record, watermark, out);
    return add_to_windows(op, record, watermark, out);
}

int cairn__window_on_timer(void *self, cairn_time_domain_t domain, const cairn_record_t *timer,
                           cairn_emitter_t *out) {
    const window_operator_t *op = self;
    if (domain != CAIRN_EVENT_TIME) return CAIRN_OK;
    cairn_buffer_t *panes;
    if (cairn_keyed_get(op->panes, timer, (void **)&panes) != CAIRN_OK) return CAIRN_ERROR;
    if (panes == NULL) return CAIRN_OK;
    if (check_panes(op, panes) != CAIRN_OK) return CAIRN_ERROR;
    int64_t at = timer->timestamp;
    size_t n = panes->len / op->stride, kept = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t *pane = pane_at(op, panes, i);
        cairn_window_t window = pane_window(pane);
        if (max_timestamp(window) == at &&
            fire(op, timer->key, window, pane_acc(pane), out) != CAIRN_OK)
            return CAIRN_ERROR;
        if (cleanup_time(op, window) > at) {
            if (kept != i) memmove(pane_at(op, panes, kept), pane, op->stride);
            kept++;
        }
    }
    panes->len = kept * op->stride;
    return kept ? CAIRN_OK : cairn_keyed_remove(op->panes, timer);
}
