/* Preloaded before libfaketime: monotonic sleeps go straight to the kernel.
 *
 * Clock faults move only the wall clock (FAKETIME_DONT_FAKE_MONOTONIC=1), yet
 * libfaketime up to 0.9.10 still rewrites the deadline of
 * clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME) and hands the kernel a negative
 * time (wolfcw/libfaketime#426). Python 3.11's time.sleep() sleeps exactly that way,
 * so every sleep of a service under a clock fault failed with EINVAL. Monotonic
 * clocks are never faked, so bypassing libfaketime for them is always right.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_nanosleep_fn)(clockid_t, int, const struct timespec *, struct timespec *);

int clock_nanosleep(clockid_t clock, int flags, const struct timespec *request,
                    struct timespec *remain)
{
    static clock_nanosleep_fn next;
    if (clock == CLOCK_MONOTONIC || clock == CLOCK_BOOTTIME) {
        /* clock_nanosleep returns the error number instead of setting errno */
        return syscall(SYS_clock_nanosleep, clock, flags, request, remain) == 0 ? 0 : errno;
    }
    if (next == NULL)
        next = (clock_nanosleep_fn)dlsym(RTLD_NEXT, "clock_nanosleep");
    return next(clock, flags, request, remain);
}
