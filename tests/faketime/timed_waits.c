/* Timed waits under libfaketime, for `make test-shifted`.
 *
 * libfaketime (Debian 0.9.10) fakes CLOCK_MONOTONIC too, as the shifted runs want, but
 * does not intercept sem_clockwait(): CPython 3.11 takes a lock with a timeout
 * (threading.Event.wait, Condition.wait, queue.get) through it, with a deadline on the
 * faked monotonic clock, which the kernel then reads as days or months away: every
 * background thread waiting with a timeout hung. Preloaded before libfaketime, this moves
 * the deadline back onto the kernel's clock by the current fake offset.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <semaphore.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clockwait_fn)(sem_t *, clockid_t, const struct timespec *);

int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *abstime) {
    static clockwait_fn real_clockwait;
    if (!real_clockwait) {
        real_clockwait = (clockwait_fn)dlsym(RTLD_NEXT, "sem_clockwait");
    }
    struct timespec faked, kernel, fixed;
    clock_gettime(clock, &faked);                /* libfaketime's answer */
    syscall(SYS_clock_gettime, clock, &kernel);  /* the kernel's own */
    long long offset = (faked.tv_sec - kernel.tv_sec) * 1000000000LL
                       + (faked.tv_nsec - kernel.tv_nsec);
    long long at = abstime->tv_sec * 1000000000LL + abstime->tv_nsec - offset;
    fixed.tv_sec = at / 1000000000LL;
    fixed.tv_nsec = at % 1000000000LL;
    return real_clockwait(sem, clock, &fixed);
}
