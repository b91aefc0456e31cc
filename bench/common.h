/* Small helpers shared by the benchmark programs (server and clients):
 * clocks, the process's own CPU time and memory, the file-descriptor limit,
 * and the one result line each client prints. POSIX/Linux only: the
 * benchmarks are not part of the library. */
#ifndef XMPPUV_BENCH_COMMON_H
#define XMPPUV_BENCH_COMMON_H

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The bench XMPP domain and account every client uses. */
#define BENCH_DOMAIN "bench.example"
#define BENCH_USER "bench"
#define BENCH_PASSWORD "bench-password"
/* The ~60-byte body of every benchmark message. */
#define BENCH_BODY "The quick brown fox jumps over the lazy dog; 0123456789 ok."
#define BENCH_PEER "alice@bench.example/phone"

static inline double bench_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user+sys CPU seconds of this process so far. */
static inline double bench_cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Peak resident set size, KiB (ru_maxrss). */
static inline long bench_peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* Current resident set size, KiB, from /proc/self/statm. */
static inline long bench_rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;
  if (f == NULL) return -1;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = -1;
  fclose(f);
  return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Bytes the process has allocated and not freed (glibc's mallinfo2: every
 * arena, small and mmapped blocks), KiB: the live heap, whatever RSS the
 * allocator keeps besides. Bench-only: the library calls nothing
 * allocator-specific. */
static inline double bench_heap_kb(void) {
  struct mallinfo2 mi = mallinfo2();
  return (double)(mi.uordblks + mi.hblkhd) / 1024.0;
}

/* Raise RLIMIT_NOFILE to at least want (up to the hard limit). Returns the
 * soft limit in force afterwards. */
static inline long bench_raise_nofile(long want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
  if ((long)rl.rlim_cur < want) {
    rlim_t target = (rlim_t)want;
    if (rl.rlim_max != RLIM_INFINITY && target > rl.rlim_max) target = rl.rlim_max;
    rl.rlim_cur = target;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  return (long)rl.rlim_cur;
}

static inline void bench_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

#endif
