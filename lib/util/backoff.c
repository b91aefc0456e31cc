#include "util/backoff.h"

uint64_t xmppuv__backoff_delay(unsigned attempt, uint64_t base_ms, uint64_t max_ms,
                               uint32_t random) {
  if (attempt == 0) attempt = 1;
  uint64_t d = base_ms;
  for (unsigned i = 1; i < attempt && d < max_ms; i++) d *= 2;
  if (d > max_ms) d = max_ms;
  /* ±20%: d * (0.8 + 0.4 * random / 2^32), in integers. */
  uint64_t jitter = (d * 2 / 5) * random >> 32;
  uint64_t delayed = d - d / 5 + jitter;
  return delayed > max_ms ? max_ms : delayed;
}

uint64_t xmppuv__random_next(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
