/* An allocator that looks for secrets in memory handed back to it: it
 * remembers every live block and its size, fills new blocks with a fixed
 * byte (so a scan never reads garbage), and on free (and realloc) checks
 * the block against the secrets being watched. A test watches the password
 * and the derived keys, runs the code, and asserts that no freed block held
 * one, and, while the objects are alive, that the secret is really there to
 * be found (so the check cannot pass by looking in the wrong place).
 * Installed through xmppuv_replace_allocator(). Not thread-safe. */
#ifndef XMPPUV_TEST_SECRET_ALLOC_H
#define XMPPUV_TEST_SECRET_ALLOC_H

#include <stddef.h>

/* Install (no secret watched, nothing seen freed). */
void secret_alloc_install(void);
/* Back to the C library's allocator; the watch list is emptied. */
void secret_alloc_uninstall(void);
/* Watch these bytes (borrowed: they must outlive the watch); up to 8. */
void secret_alloc_watch(const void *secret, size_t len);
void secret_alloc_watch_str(const char *secret);
void secret_alloc_unwatch_all(void);
/* A block that held a watched secret was freed (since install or the last
 * reset). */
int secret_alloc_freed_secret(void);
void secret_alloc_reset(void);
/* Some live block holds these bytes now. */
int secret_alloc_live_holds(const void *needle, size_t len);
/* Blocks allocated and not yet freed. */
size_t secret_alloc_live_blocks(void);

#endif
