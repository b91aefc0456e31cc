/* What the chat layer's modules share (lib/im/ only, not installed). Like
 * the modules, it stands on the public API alone. */
#ifndef XMPPUV_IM_COMMON_H
#define XMPPUV_IM_COMMON_H

#include <xmppuv.h>

/* A copy (libc malloc: the layer allocates as an app would), NULL for NULL
 * or when out of memory. */
char *xmppuv__im_strdup(const char *s);
/* The same, setting *failed when s was not NULL and the copy failed. */
char *xmppuv__im_strdup_opt(const char *s, int *failed);

/* Does from name the account itself, as data about the account may only
 * come from it (roster pushes, carbons, our archive's results)? Exactly
 * its bare JID, compared as JIDs (normalized): a full JID of ours is not,
 * and no from at all is only when absent_ok. */
int xmppuv__im_from_account(xmppuv_client_t *c, const char *from, int absent_ok);

#endif
