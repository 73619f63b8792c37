/*
 * window.h: the window operator (window.c) as cairn.c runs it, for an operator whose
 * `window` is set: its instance struct, opened, then its process and on_timer callbacks.
 * Internal to the SDK.
 */
#ifndef CAIRN_WINDOW_H
#define CAIRN_WINDOW_H

#include "cairn.h"

/* Bytes of the window operator's instance struct (`self`), zeroed before its open. */
extern const size_t cairn__window_size;

/* The codec of its keyed state's values: a key's panes (a cairn_buffer_t). */
extern const cairn_value_codec_t cairn__window_panes_codec;

/* Reads the aggregate's windows from the context; the keyed state (ctx->keyed_state) keeps
 * each key's windows. */
int cairn__window_open(void *self, const cairn_aggregate_t *aggregate,
                       const cairn_context_t *ctx);

int cairn__window_process(void *self, const cairn_record_t *record, cairn_emitter_t *out);

int cairn__window_on_timer(void *self, cairn_time_domain_t domain, const cairn_record_t *timer,
                           cairn_emitter_t *out);

#endif /* CAIRN_WINDOW_H */
