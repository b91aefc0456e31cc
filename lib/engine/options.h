/* The public options and callbacks structs as the library takes them in:
 * checked to have been initialised (struct_size, set by the public _init
 * macros), copied whole, with the defaults for fields an older app does not
 * know. Validation of the values themselves is the engine's (engine.c). */
#ifndef XMPPUV_ENGINE_OPTIONS_H
#define XMPPUV_ENGINE_OPTIONS_H

#include <stddef.h>

#include "xmppuv.h"

/* Every option at its default (the numbers are in util/defaults.h). */
void xmppuv__options_defaults(xmppuv_client_options_t *o);

/* A full copy of in (strings borrowed from in) into out: in's fields as far
 * as in->struct_size covers them, the defaults for the rest. XMPPUV_EINVAL
 * when in was never initialised (struct_size 0, or not a size the library
 * can have written: then nothing else in it is read) or comes from a newer
 * header than the library's; the reason is logged through in->log_cb when
 * that can be trusted. */
int xmppuv__options_import(const xmppuv_client_options_t *in, xmppuv_client_options_t *out);

/* The same for callbacks (NULL in: all NULL). */
int xmppuv__callbacks_import(const xmppuv_client_callbacks_t *in,
                             xmppuv_client_callbacks_t *out,
                             const xmppuv_client_options_t *log_to);

#endif
