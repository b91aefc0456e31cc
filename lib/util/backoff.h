/* Reconnection delays: exponential backoff with jitter. */
#ifndef XMPPUV_BACKOFF_H
#define XMPPUV_BACKOFF_H

#include <stdint.h>

/* The delay before reconnection attempt n (1, 2, ...): base * 2^(n-1),
 * capped at max, then jittered by up to ±20% (random is any 32-bit number)
 * and capped again, so a crowd of clients dropped at once does not come
 * back at once. */
uint64_t xmppuv__backoff_delay(unsigned attempt, uint64_t base_ms, uint64_t max_ms,
                               uint32_t random);

/* A small fast PRNG (splitmix64) for jitter and stanza ids. */
uint64_t xmppuv__random_next(uint64_t *state);

#endif
