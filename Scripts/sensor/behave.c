/*
 * behave: one suspicious behaviour per run, for the live tests of the built-in detection rules
 * (rules/CAD-*.test.yaml). It does what the testbox's busybox cannot.
 *
 *   cc -O2 -Wall -static -o behave behave.c behave_primitives.c
 *   behave ACTION [ARGS]
 *
 * ACTION (the syscalls issued are the ones the rules look for):
 *   ptrace-traceme        a forked child calls ptrace(PTRACE_TRACEME) (anti-debugging)
 *   ptrace-attach         forks a child, PTRACE_ATTACHes it, waits, PTRACE_DETACHes, kills it
 *   ptrace-poke           as ptrace-attach, then PTRACE_POKETEXT, PTRACE_POKEDATA (and PTRACE_POKEUSER on
 *                         x86-64) write back the words just peeked: nothing in the child changes
 *   proc-mem-write        opens /proc/self/mem O_RDWR and writes a variable's own bytes back over it
 *   vm-writev             process_vm_writev into a forked child (same bytes it already holds)
 *   memfd-exec            memfd_create, copies /bin/busybox into it, a child executes it with
 *                         execveat(fd, "", AT_EMPTY_PATH) as `true` (falls back to /proc/self/fd/N)
 *   wx-memory             mmap an anonymous page PROT_READ|PROT_WRITE, then mprotect it RWX
 *   packet-socket         socket(AF_PACKET, SOCK_RAW, ETH_P_ALL), then close
 *   setns [PATH]          opens PATH (default /proc/self/ns/net) and calls setns(fd, 0)
 *   unshare-user          unshare(CLONE_NEWUSER)
 *   docker-sock [PATH]    connect(2) an AF_UNIX stream socket to PATH (default /var/run/docker.sock),
 *                         then close: nothing is sent
 *   dup-stdio HOST PORT   connects to HOST:PORT (loopback only), dup2s the socket onto 0, 1 and 2
 *                         and executes `sh -c true` (a reverse shell that exits at once)
 *   tcp-connect HOST PORT connects to HOST:PORT (loopback only) and closes: run through a symlink named
 *                         like a client (`ln -s /usr/local/bin/behave /tmp/ssh`), the process's name is that
 *                         client's (argv[0] is ignored)
 *   kcore                 opens /proc/kcore for reading and reads one byte
 *   finit-module FILE     opens FILE and calls finit_module(fd, "", 0)
 *   init-module FILE      reads FILE and calls init_module(image, len, "")
 *
 *   time-open PATH N      N times open(PATH, O_RDONLY) and close: one line with the mean ns per call,
 *                         how many were refused (EPERM or EACCES) and the last errno (for `caduceus bench prevent`)
 *   time-connect HOST PORT N  N times socket, connect (loopback only) and close, reported the same way
 *   time-exec PATH N      N times fork, execve(PATH) with no arguments, wait, reported the same way
 *                         (a refused execve exits the child with 126)
 *   open-flood PATH PROCS SECONDS  PROCS processes open and close PATH (O_RDONLY) as fast as they can
 *                         for SECONDS: a storm of permission events for a guard to answer
 *   tcp-connect-local HOST PORT  as tcp-connect, to an address of one of this machine's own interfaces
 *                         (not only loopback; with --network host, the host's): a connection that looks
 *                         outbound to rules that exclude loopback, yet never leaves the machine
 *
 * Exploit primitives and reconnaissance (behave_primitives.c): userfaultfd, af-alg, wx-mmap,
 * exe-write, proc-mem-read, vm-readv, set-name NAME, bpf-load, port-scan HOST FIRST LAST.
 *
 * Each action prints one line per syscall (what, result, errno) on stdout and exits 0 even when the
 * kernel (or seccomp) refuses the syscall: the attempt is what the rules detect. An unknown action
 * or missing argument prints the usage on stderr and exits 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <linux/if_ether.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

#include "behave.h"

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

extern char **environ;

/* What the injection actions write: their own value, so nothing changes. */
volatile long target = 0x6361647563657573L;

void usage(void) {
    fprintf(stderr,
            "usage: behave ACTION [ARGS]\n"
            "actions: ptrace-traceme | ptrace-attach | ptrace-poke | proc-mem-write | vm-writev |\n"
            "         memfd-exec | wx-memory | packet-socket | setns [PATH] | unshare-user |\n"
            "         docker-sock [PATH] | dup-stdio HOST PORT | tcp-connect HOST PORT | kcore |\n"
            "         finit-module FILE | init-module FILE |\n"
            "         time-open PATH N | time-connect HOST PORT N | time-exec PATH N |\n"
            "         open-flood PATH PROCS SECONDS | tcp-connect-local HOST PORT |\n"
            "         userfaultfd | af-alg | wx-mmap | exe-write | proc-mem-read | vm-readv | set-name NAME |\n"
            "         bpf-load | port-scan HOST FIRST LAST\n");
    exit(2);
}

/* One line per syscall: `behave: what = result` and the errno's text when it failed. */
long report(const char *what, long result) {
    int saved = errno;
    if (result < 0)
        printf("behave: %s = %ld (%s)\n", what, result, strerror(saved));
    else
        printf("behave: %s = %ld\n", what, result);
    fflush(stdout);
    errno = saved;
    return result;
}

/* A child that waits to be traced or written to, then is killed. */
pid_t idle_child(void) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    report("fork", child);
    return child;
}

void end_child(pid_t child) {
    if (child <= 0) return;
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
}

static void ptrace_traceme(void) {
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        report("ptrace(PTRACE_TRACEME)", ptrace(PTRACE_TRACEME, 0, NULL, NULL));
        _exit(0);
    }
    report("fork", child);
    if (child > 0) waitpid(child, NULL, 0);
}

static void ptrace_attach(int poke) {
    pid_t child = idle_child();
    if (child < 0) return;
    if (report("ptrace(PTRACE_ATTACH, child)", ptrace(PTRACE_ATTACH, child, NULL, NULL)) == 0) {
        int status;
        waitpid(child, &status, 0);
        if (poke) {
            errno = 0;
            long word = ptrace(PTRACE_PEEKDATA, child, (void *)&target, NULL);
            report("ptrace(PTRACE_PEEKDATA)", errno ? -1 : 0);
            report("ptrace(PTRACE_POKETEXT) (same word)", ptrace(PTRACE_POKETEXT, child, (void *)&target, (void *)word));
            report("ptrace(PTRACE_POKEDATA) (same word)", ptrace(PTRACE_POKEDATA, child, (void *)&target, (void *)word));
#ifdef __x86_64__
            size_t offset = offsetof(struct user, regs) + offsetof(struct user_regs_struct, r15);
            errno = 0;
            long r15 = ptrace(PTRACE_PEEKUSER, child, (void *)offset, NULL);
            if (errno == 0)
                report("ptrace(PTRACE_POKEUSER) (same r15)", ptrace(PTRACE_POKEUSER, child, (void *)offset, (void *)r15));
#endif
        }
        report("ptrace(PTRACE_DETACH)", ptrace(PTRACE_DETACH, child, NULL, NULL));
    } else if (poke) {
        /* The attach was refused: try the pokes anyway, the attempt is what is detected. */
        report("ptrace(PTRACE_POKEDATA) (not attached)", ptrace(PTRACE_POKEDATA, child, (void *)&target, (void *)target));
    }
    end_child(child);
}

static void proc_mem_write(void) {
    int fd = (int)report("open(/proc/self/mem, O_RDWR)", open("/proc/self/mem", O_RDWR));
    if (fd < 0) return;
    long value = target;
    report("pwrite(/proc/self/mem, own variable)",
           pwrite(fd, &value, sizeof value, (off_t)(uintptr_t)&target));
    close(fd);
}

static void vm_writev(void) {
    pid_t child = idle_child();
    if (child < 0) return;
    long value = target;
    struct iovec local = {&value, sizeof value};
    struct iovec remote = {(void *)&target, sizeof value};
    report("process_vm_writev(child)", process_vm_writev(child, &local, 1, &remote, 1, 0));
    end_child(child);
}

static void memfd_exec(void) {
    int fd = (int)report("memfd_create(\"behave\")", syscall(SYS_memfd_create, "behave", 0));
    if (fd < 0) return;
    int in = open("/bin/busybox", O_RDONLY);
    if (report("open(/bin/busybox)", in) < 0) return;
    char buffer[65536];
    ssize_t n;
    long total = 0;
    while ((n = read(in, buffer, sizeof buffer)) > 0) {
        if (write(fd, buffer, (size_t)n) != n) break;
        total += n;
    }
    close(in);
    printf("behave: copied %ld bytes into the memfd\n", total);
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        char *argv[] = {"true", NULL};
        syscall(SYS_execveat, fd, "", argv, environ, AT_EMPTY_PATH);
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        execve(path, argv, environ);
        report("execveat and execve of the memfd", -1);
        _exit(0);
    }
    report("fork", child);
    if (child > 0) {
        int status = 0;
        waitpid(child, &status, 0);
        printf("behave: the memfd program exited with %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
}

static void wx_memory(void) {
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (report("mmap(PROT_READ|PROT_WRITE)", page == MAP_FAILED ? -1 : 0) < 0) return;
    report("mprotect(PROT_READ|PROT_WRITE|PROT_EXEC)", mprotect(page, 4096, PROT_READ | PROT_WRITE | PROT_EXEC));
    munmap(page, 4096);
}

static void packet_socket(void) {
    int fd = (int)report("socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)", socket(AF_PACKET, SOCK_RAW, htons(ETH_P_ALL)));
    if (fd >= 0) close(fd);
}

static void do_setns(const char *path) {
    char what[300];
    snprintf(what, sizeof what, "open(%s)", path);
    int fd = (int)report(what, open(path, O_RDONLY));
    if (fd < 0) return;
    report("setns(fd, 0)", setns(fd, 0));
    close(fd);
}

static void docker_sock(const char *path) {
    int fd = (int)report("socket(AF_UNIX, SOCK_STREAM)", socket(AF_UNIX, SOCK_STREAM, 0));
    if (fd < 0) return;
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    strncpy(address.sun_path, path, sizeof address.sun_path - 1);
    char what[300];
    snprintf(what, sizeof what, "connect(%s)", path);
    report(what, connect(fd, (struct sockaddr *)&address, sizeof address));
    close(fd);
}

int loopback(const char *host, struct sockaddr_storage *out, socklen_t *length, int port) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if ((ntohl(v4->sin_addr.s_addr) >> 24) != 127) return 0;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *length = sizeof *v4;
        return 1;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) return 0;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *length = sizeof *v6;
        return 1;
    }
    return 0;
}

/* A TCP socket connected (or not: the result is reported) to HOST:PORT, which must be loopback. */
static int tcp_socket(const char *action, const char *host, const char *port_text) {
    char *end;
    long port = strtol(port_text, &end, 10);
    struct sockaddr_storage address;
    socklen_t length = 0;
    if (*end || port <= 0 || port > 65535) usage();
    if (!loopback(host, &address, &length, (int)port)) {
        fprintf(stderr, "behave: %s only connects to loopback addresses (127.0.0.0/8, ::1), not %s\n", action, host);
        exit(2);
    }
    int fd = (int)report("socket", socket(address.ss_family, SOCK_STREAM, 0));
    if (fd < 0) return fd;
    char what[300];
    snprintf(what, sizeof what, "connect(%s port %ld)", host, port);
    report(what, connect(fd, (struct sockaddr *)&address, length));
    return fd;
}

static void tcp_connect(const char *host, const char *port_text) {
    int fd = tcp_socket("tcp-connect", host, port_text);
    if (fd >= 0) close(fd);
}

static void dup_stdio(const char *host, const char *port_text) {
    int fd = tcp_socket("dup-stdio", host, port_text);
    if (fd < 0) return;
    /* Even when the connect failed: the dup2 of a socket onto stdio is the detected behaviour. */
    printf("behave: dup2(socket, 0), dup2(socket, 1), dup2(socket, 2), then exec sh -c true\n");
    fflush(stdout);
    dup2(fd, 0);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    execl("/bin/sh", "sh", "-c", "true", (char *)NULL);
    _exit(0);
}

static void kcore(void) {
    int fd = (int)report("open(/proc/kcore, O_RDONLY)", open("/proc/kcore", O_RDONLY));
    if (fd < 0) return;
    char byte;
    report("read(/proc/kcore, 1)", read(fd, &byte, 1));
    close(fd);
}

static void finit_module_file(const char *path) {
    int fd = (int)report("open(module)", open(path, O_RDONLY));
    if (fd < 0) return;
    report("finit_module(fd, \"\", 0)", syscall(SYS_finit_module, fd, "", 0));
    close(fd);
}

static void init_module_file(const char *path) {
    int fd = (int)report("open(module)", open(path, O_RDONLY));
    if (fd < 0) return;
    static char image[1 << 20];
    ssize_t n = read(fd, image, sizeof image);
    close(fd);
    if (report("read(module)", n) < 0) return;
    report("init_module(image, len, \"\")", syscall(SYS_init_module, image, (unsigned long)n, ""));
}

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static long count_argument(const char *text) {
    char *end;
    long n = strtol(text, &end, 10);
    if (*end || n <= 0 || n > 100000000) usage();
    return n;
}

/* The timing actions: `behave: time-KIND WHAT calls=N ns_per_call=X refused=K errno=E`. */
static void report_timing(const char *kind, const char *what, long calls, double elapsed, long refused, int last_errno) {
    printf("behave: %s %s calls=%ld ns_per_call=%.1f refused=%ld errno=%d\n", kind, what, calls, elapsed / (double)calls,
           refused, last_errno);
    fflush(stdout);
}

static void time_open(const char *path, const char *count_text) {
    long n = count_argument(count_text), refused = 0;
    int last = 0;
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            if (errno == EPERM || errno == EACCES) refused++;
            last = errno;
        } else {
            close(fd);
        }
    }
    report_timing("time-open", path, n, now_ns() - start, refused, last);
}

static void time_connect(const char *host, const char *port_text, const char *count_text) {
    long n = count_argument(count_text), port = strtol(port_text, NULL, 10), refused = 0;
    struct sockaddr_storage address;
    socklen_t length = 0;
    if (port <= 0 || port > 65535 || !loopback(host, &address, &length, (int)port)) usage();
    int last = 0;
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        int fd = socket(address.ss_family, SOCK_STREAM, 0);
        if (fd < 0) {
            refused++;
            last = errno;
            continue;
        }
        /* A closed port answers ECONNREFUSED: the call ran. EPERM/EACCES: a hook refused it. */
        errno = 0;
        if (connect(fd, (struct sockaddr *)&address, length) < 0 && (errno == EPERM || errno == EACCES)) refused++;
        if (errno) last = errno;
        close(fd);
    }
    char what[300];
    snprintf(what, sizeof what, "%s:%ld", host, port);
    report_timing("time-connect", what, n, now_ns() - start, refused, last);
}

static void time_exec(const char *path, const char *count_text) {
    long n = count_argument(count_text), refused = 0;
    int last = 0;
    double start = now_ns();
    for (long i = 0; i < n; i++) {
        pid_t child = fork();
        if (child == 0) {
            char *arguments[] = {(char *)path, NULL};
            execve(path, arguments, environ);
            _exit(errno == EPERM || errno == EACCES ? 126 : 127);
        }
        int status = 0;
        if (child < 0 || waitpid(child, &status, 0) < 0) {
            last = errno;
            continue;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 126) {
            refused++;
            last = EPERM;
        }
    }
    report_timing("time-exec", path, n, now_ns() - start, refused, last);
}

static void open_flood(const char *path, const char *procs_text, const char *seconds_text) {
    long procs = count_argument(procs_text), seconds = count_argument(seconds_text), opens = 0;
    if (procs > 4096 || seconds > 3600) usage();
    double end = now_ns() + (double)seconds * 1e9;
    fflush(stdout);
    for (long i = 0; i < procs; i++) {
        if (fork() == 0) {
            while (now_ns() < end) {
                int fd = open(path, O_RDONLY);
                if (fd >= 0) close(fd);
            }
            _exit(0);
        }
    }
    while (wait(NULL) > 0) opens++;
    printf("behave: open-flood %s procs=%ld seconds=%ld\n", path, opens, seconds);
}

/* HOST as an address of one of this machine's interfaces, or 0 when it is none of them. */
static int local_address(const char *host, struct sockaddr_storage *out, socklen_t *length, int port) {
    if (loopback(host, out, length, port)) return 1;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof *out);
    int family = inet_pton(AF_INET, host, &v4->sin_addr) == 1 ? AF_INET
        : inet_pton(AF_INET6, host, &v6->sin6_addr) == 1 ? AF_INET6 : 0;
    struct ifaddrs *list = NULL, *entry;
    int found = 0;
    if (!family || getifaddrs(&list) != 0) return 0;
    for (entry = list; entry && !found; entry = entry->ifa_next) {
        if (!entry->ifa_addr || entry->ifa_addr->sa_family != family) continue;
        if (family == AF_INET)
            found = ((struct sockaddr_in *)entry->ifa_addr)->sin_addr.s_addr == v4->sin_addr.s_addr;
        else
            found = memcmp(&((struct sockaddr_in6 *)entry->ifa_addr)->sin6_addr, &v6->sin6_addr, 16) == 0;
    }
    freeifaddrs(list);
    if (!found) return 0;
    if (family == AF_INET) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        *length = sizeof *v4;
    } else {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        *length = sizeof *v6;
    }
    return 1;
}

static void tcp_connect_local(const char *host, const char *port_text) {
    char *end;
    long port = strtol(port_text, &end, 10);
    struct sockaddr_storage address;
    socklen_t length = 0;
    if (*end || port <= 0 || port > 65535) usage();
    if (!local_address(host, &address, &length, (int)port)) {
        fprintf(stderr, "behave: tcp-connect-local only connects to this machine's own addresses, not %s\n", host);
        exit(2);
    }
    int fd = (int)report("socket", socket(address.ss_family, SOCK_STREAM, 0));
    if (fd < 0) return;
    char what[300];
    snprintf(what, sizeof what, "connect(%s port %ld)", host, port);
    report(what, connect(fd, (struct sockaddr *)&address, length));
    close(fd);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *action = argv[1];
    int extra = argc - 2;
#define IS(name, min, max) (strcmp(action, name) == 0 && (extra >= (min) && extra <= (max) ? 1 : (usage(), 0)))
    if (IS("ptrace-traceme", 0, 0)) ptrace_traceme();
    else if (IS("ptrace-attach", 0, 0)) ptrace_attach(0);
    else if (IS("ptrace-poke", 0, 0)) ptrace_attach(1);
    else if (IS("proc-mem-write", 0, 0)) proc_mem_write();
    else if (IS("vm-writev", 0, 0)) vm_writev();
    else if (IS("memfd-exec", 0, 0)) memfd_exec();
    else if (IS("wx-memory", 0, 0)) wx_memory();
    else if (IS("packet-socket", 0, 0)) packet_socket();
    else if (IS("setns", 0, 1)) do_setns(extra ? argv[2] : "/proc/self/ns/net");
    else if (IS("unshare-user", 0, 0)) report("unshare(CLONE_NEWUSER)", unshare(CLONE_NEWUSER));
    else if (IS("docker-sock", 0, 1)) docker_sock(extra ? argv[2] : "/var/run/docker.sock");
    else if (IS("dup-stdio", 2, 2)) dup_stdio(argv[2], argv[3]);
    else if (IS("tcp-connect", 2, 2)) tcp_connect(argv[2], argv[3]);
    else if (IS("kcore", 0, 0)) kcore();
    else if (IS("finit-module", 1, 1)) finit_module_file(argv[2]);
    else if (IS("init-module", 1, 1)) init_module_file(argv[2]);
    else if (IS("time-open", 2, 2)) time_open(argv[2], argv[3]);
    else if (IS("time-connect", 3, 3)) time_connect(argv[2], argv[3], argv[4]);
    else if (IS("time-exec", 2, 2)) time_exec(argv[2], argv[3]);
    else if (IS("open-flood", 3, 3)) open_flood(argv[2], argv[3], argv[4]);
    else if (IS("tcp-connect-local", 2, 2)) tcp_connect_local(argv[2], argv[3]);
    else if (!behave_primitive(action, extra, argv)) usage();
    return 0;
}
