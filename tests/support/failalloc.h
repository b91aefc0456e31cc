/* A failing allocator: counts xmppuv's allocations, makes the n-th one fail,
 * and counts blocks still live so a test can see leaks. Installed through the
 * public xmppuv_replace_allocator(), so it covers expat's memory too.
 *
 * It also counts bytes (malloc_usable_size, what the C library really
 * handed out): live bytes, and the peak since a baseline, so a test can
 * bound the memory something costs (peak live bytes, not RSS). With no
 * failure planned it is simply a counting allocator. */
#ifndef XMPPUV_TEST_FAILALLOC_H
#define XMPPUV_TEST_FAILALLOC_H

#include <stddef.h>

/* Install (every counter at zero, no failure planned). */
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

/* Bytes in the blocks failalloc_live() counts. */
size_t failalloc_live_bytes(void);
/* A new baseline: the live bytes now, and the peak starts again from them. */
void failalloc_peak_reset(void);
/* The live bytes at the last failalloc_peak_reset() (or install). */
size_t failalloc_peak_base(void);
/* The most live bytes at any time since then, above that baseline. */
size_t failalloc_peak_growth(void);

/* Run scenario with the 1st, 2nd, ... allocation failing until it runs to
 * the end without reaching the failure. For each run the scenario must
 * return 0 or XMPPUV_ENOMEM and leave no live block; this is checked with
 * Check assertions. Returns the number of failure points exercised. */
long failalloc_sweep(int (*scenario)(void *user_data), void *user_data);

#endif
