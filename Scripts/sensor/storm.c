/*
 * storm: a syscall storm for the sensor benchmark.
 *
 *   cc -O2 -Wall -static -o storm storm.c
 *   storm MODE SECONDS [OPS_PER_SECOND]
 *
 * MODE (the sensor traces syscalls by name, so these are the exact syscalls issued):
 *   stat   1 syscall per op:  stat("/etc/hostname")                         -> `stat`
 *   open   2 syscalls per op: openat(AT_FDCWD, "/etc/hostname", O_RDONLY)   -> `openat`
 *                             close(fd)                                     -> `close`
 *   mixed  3 syscalls per op: stat, openat, close as above
 * The raw syscall(2) wrapper is used on purpose: glibc's stat() issues `newfstatat`, and
 * glibc's open() issues `openat` anyway; SYS_stat keeps the traced event `stat`, as in the
 * project's original Tracee data. (Architectures without SYS_stat, e.g. aarch64, fall back
 * to `newfstatat`/`fstatat64`.)
 *
 * OPS_PER_SECOND 0 or absent: as fast as possible. Otherwise the clock (CLOCK_MONOTONIC, via
 * the vDSO: no traced syscall) is read every 256 ops and the program sleeps (clock_nanosleep,
 * absolute deadline) or spins (last 200 us) until start + ops / rate. Deadlines are absolute,
 * so an oversleep is made up in the next batches and the average rate does not drift.
 * The run ends at the first 256-op boundary at or after SECONDS; rates are computed over
 * the measured elapsed time. One JSON line on stdout at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256
#define SPIN_NS 200000LL
static const char *path = "/etc/hostname";

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long do_stat(struct stat *st) {
#ifdef SYS_stat
    return syscall(SYS_stat, path, st);
#else
    return syscall(SYS_newfstatat, AT_FDCWD, path, st, 0);
#endif
}

static long do_open_close(void) {
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY);
    if (fd >= 0) syscall(SYS_close, fd);
    return fd;
}

static void usage(void) {
    fprintf(stderr, "usage: storm stat|open|mixed SECONDS [OPS_PER_SECOND]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) usage();
    const char *mode = argv[1];
    int kind, per_op;
    if (strcmp(mode, "stat") == 0) { kind = 0; per_op = 1; }
    else if (strcmp(mode, "open") == 0) { kind = 1; per_op = 2; }
    else if (strcmp(mode, "mixed") == 0) { kind = 2; per_op = 3; }
    else usage();
    char *end;
    double seconds = strtod(argv[2], &end);
    if (*end || !(seconds > 0)) usage();
    double rate = 0;
    if (argc == 4) {
        rate = strtod(argv[3], &end);
        if (*end || rate < 0) usage();
    }

    /* Fail loudly up front rather than storm with failing syscalls. */
    struct stat st;
    if ((kind != 1 && do_stat(&st) < 0) || (kind != 0 && do_open_close() < 0)) {
        fprintf(stderr, "storm: %s: %s\n", path, strerror(errno));
        return 1;
    }

    long long start = now_ns();
    long long stop = start + (long long)(seconds * 1e9);
    long long ops = 0, t = start;
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            if (kind != 1) do_stat(&st);
            if (kind != 0) do_open_close();
        }
        ops += BATCH;
        t = now_ns();
        if (rate > 0) {
            long long target = start + (long long)((double)ops * 1e9 / rate);
            if (target - t > SPIN_NS) {
                long long wake = target - SPIN_NS;
                struct timespec ts = { wake / 1000000000LL, wake % 1000000000LL };
                while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {}
                t = now_ns();
            }
            while (t < target) t = now_ns();
        }
        if (t >= stop) break;
    }

    double elapsed = (double)(t - start) / 1e9;
    printf("{\"mode\":\"%s\",\"ops\":%lld,\"syscalls\":%lld,\"seconds\":%.6f,"
           "\"ops_per_second\":%.1f,\"syscalls_per_second\":%.1f}\n",
           mode, ops, ops * per_op, elapsed, (double)ops / elapsed,
           (double)(ops * per_op) / elapsed);
    return 0;
}
