/* Shared by the fuzz targets: reading choices out of the fuzzer's bytes,
 * and the checks a harness makes (a failed check aborts, which libFuzzer
 * reports as a crash and saves the input).
 *
 * Choices are read from the FRONT of the input (a fixed-size header) so the
 * rest stays one contiguous run of protocol bytes that mutation and the
 * dictionary can work on. Chunk sizes come from a small PRNG seeded by the
 * header, not from the data, for the same reason. */
#ifndef XMPPUV_FUZZ_INPUT_H
#define XMPPUV_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct fz_in {
  const uint8_t *p;
  size_t n;
} fz_in_t;

/* One byte, or 0 once the input is used up. */
static inline uint8_t fz_u8(fz_in_t *in) {
  if (in->n == 0) return 0;
  in->n--;
  return *in->p++;
}

static inline uint32_t fz_u32(fz_in_t *in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) v = (v << 8) | fz_u8(in);
  return v;
}

/* xorshift32: chunk sizes and other choices that must not eat data. */
typedef struct fz_rng {
  uint32_t s;
} fz_rng_t;

static inline void fz_rng_seed(fz_rng_t *r, uint32_t seed) {
  r->s = seed != 0 ? seed : 0x9e3779b9u;
}

static inline uint32_t fz_rng_next(fz_rng_t *r) {
  uint32_t x = r->s;
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  r->s = x;
  return x;
}

/* The next chunk length for feeding `left` bytes: byte at a time, small
 * odd sizes, or the rest, in proportions set by the style:
 *   0 whole, 1 one byte at a time, 2 mixed small, 3 mixed with big. */
static inline size_t fz_chunk(fz_rng_t *r, unsigned style, size_t left) {
  size_t n;
  switch (style & 3u) {
    case 0: n = left; break;
    case 1: n = 1; break;
    case 2: n = 1 + fz_rng_next(r) % 7u; break;
    default: {
      uint32_t x = fz_rng_next(r);
      n = (x & 3u) == 0 ? left : 1 + (x >> 2) % 97u;
      break;
    }
  }
  return n < left ? n : left;
}

#define FZ_CHECK(cond, ...)                                              \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__,   \
              #cond);                                                    \
      fprintf(stderr, __VA_ARGS__);                                      \
      fputc('\n', stderr);                                               \
      abort();                                                           \
    }                                                                    \
  } while (0)

#endif
