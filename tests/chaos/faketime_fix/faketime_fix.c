/* Preloaded in front of libfaketime for chaos runs with clock skew.
 *
 * asio arms its timerfd with TFD_TIMER_ABSTIME and it_value = 1 ns ("already
 * due: fire now") when a timer has expired by the time it re-arms. libfaketime
 * (0.9.10) converts absolute times with its rate, and a rate != 1 turns that
 * "1 ns after boot" into a time that never comes (x > 1) or EINVAL (x < 1): the
 * event loop's timers then stop firing until some newer timer re-arms the fd.
 * That is a fault of the test tooling, not of the node, so it is fixed here: an
 * absolute expiry that is already in the past becomes a relative 1 us, which
 * libfaketime passes through and the kernel fires at once.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>

typedef int (*settime_fn)(int, int, const struct itimerspec *, struct itimerspec *);

int timerfd_settime(int fd, int flags, const struct itimerspec *new_value,
                    struct itimerspec *old_value) {
  static settime_fn next = 0;
  if (!next) {
    /* POSIX lets dlsym's result be a function; copy it, as ISO C has no cast. */
    void *sym = dlsym(RTLD_NEXT, "timerfd_settime");
    memcpy(&next, &sym, sizeof next);
  }
  if ((flags & TFD_TIMER_ABSTIME) && new_value &&
      (new_value->it_value.tv_sec != 0 || new_value->it_value.tv_nsec != 0)) {
    struct timespec now;
    /* clock_gettime here is libfaketime's: "now" on the faked clock. */
    if (clock_gettime(CLOCK_MONOTONIC, &now) == 0 &&
        (new_value->it_value.tv_sec < now.tv_sec ||
         (new_value->it_value.tv_sec == now.tv_sec && new_value->it_value.tv_nsec <= now.tv_nsec))) {
      struct itimerspec rel = *new_value;
      rel.it_value.tv_sec = 0;
      rel.it_value.tv_nsec = 1000; /* not 1: libfaketime scales it by 1/rate, and 0 disarms */
      return next(fd, flags & ~TFD_TIMER_ABSTIME, &rel, old_value);
    }
  }
  return next(fd, flags, new_value, old_value);
}
