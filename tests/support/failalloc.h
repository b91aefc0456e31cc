/* A failing allocator: counts xmppuv's allocations, makes the n-th one fail,
 * and counts blocks still live so a test can see leaks. Installed through the
 * public xmppuv_replace_allocator(), so it covers expat's memory too. */
#ifndef XMPPUV_TEST_FAILALLOC_H
#define XMPPUV_TEST_FAILALLOC_H

void failalloc_install(void);
void failalloc_uninstall(void);
/* The n-th allocation from now fails (1 = the next one); 0 = none fails.
 * Also resets the counters. */
void failalloc_fail_at(long n);
/* Allocations attempted since failalloc_fail_at(), and whether the planned
 * failure happened. */
long failalloc_count(void);
int failalloc_failed(void);
/* Blocks allocated and not yet freed since install. */
long failalloc_live(void);

/* Run scenario with the 1st, 2nd, ... allocation failing until it runs to
 * the end without reaching the failure. For each run the scenario must
 * return 0 or XMPPUV_ENOMEM and leave no live block; this is checked with
 * Check assertions. Returns the number of failure points exercised. */
long failalloc_sweep(int (*scenario)(void *user_data), void *user_data);

#endif
