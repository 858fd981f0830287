/*
 * behave's second file: kernel-exploit primitives, memory reads, renaming and a local port scan,
 * for the live tests of rules CAD-021 and CAD-049..CAD-069. Each issues the syscall the rule looks
 * for and reports it as behave.c's actions do; none of them changes anything that outlives it.
 *
 *   userfaultfd           userfaultfd(O_CLOEXEC | O_NONBLOCK), then close
 *   af-alg                socket(AF_ALG, SOCK_SEQPACKET, 0), then close (the kernel's crypto API)
 *   wx-mmap               mmap an anonymous page PROT_READ|PROT_WRITE|PROT_EXEC at once
 *   exe-write             open(/proc/self/exe, O_WRONLY): refused with ETXTBSY while it runs
 *   proc-mem-read         forks a child, opens /proc/CHILD/mem O_RDONLY and reads a word of it
 *   vm-readv              process_vm_readv of a word from a forked child
 *   set-name NAME         prctl(PR_SET_NAME, NAME): the process's name (comm) becomes NAME
 *   bpf-load              bpf(BPF_PROG_LOAD) of a two-instruction socket filter (return 0)
 *   port-scan HOST FIRST LAST  connects to each port FIRST..LAST of HOST (loopback only, at most
 *                         1024 ports) and closes: one line with how many connected and were refused
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "behave.h"

#ifndef AF_ALG
#define AF_ALG 38
#endif

static void userfaultfd_call(void) {
    long fd = report("userfaultfd(O_CLOEXEC|O_NONBLOCK)", syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (fd >= 0) close((int)fd);
}

static void af_alg(void) {
    int fd = (int)report("socket(AF_ALG, SOCK_SEQPACKET, 0)", socket(AF_ALG, SOCK_SEQPACKET, 0));
    if (fd >= 0) close(fd);
}

static void wx_mmap(void) {
    void *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (report("mmap(PROT_READ|PROT_WRITE|PROT_EXEC)", page == MAP_FAILED ? -1 : 0) == 0) munmap(page, 4096);
}

static void exe_write(void) {
    int fd = (int)report("open(/proc/self/exe, O_WRONLY)", open("/proc/self/exe", O_WRONLY));
    if (fd >= 0) close(fd);
}

static void proc_mem_read(void) {
    pid_t child = idle_child();
    if (child < 0) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)child);
    int fd = (int)report("open(/proc/CHILD/mem, O_RDONLY)", open(path, O_RDONLY));
    if (fd >= 0) {
        long word = 0;
        report("pread(/proc/CHILD/mem, a word)", pread(fd, &word, sizeof word, (off_t)(uintptr_t)&target));
        close(fd);
    }
    end_child(child);
}

static void vm_readv(void) {
    pid_t child = idle_child();
    if (child < 0) return;
    long word = 0;
    struct iovec local = {&word, sizeof word};
    struct iovec remote = {(void *)&target, sizeof word};
    report("process_vm_readv(child)", process_vm_readv(child, &local, 1, &remote, 1, 0));
    end_child(child);
}

static void set_name(const char *name) {
    report("prctl(PR_SET_NAME)", prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0));
}

static void bpf_load(void) {
    struct bpf_insn program[2];
    memset(program, 0, sizeof program);
    program[0].code = BPF_ALU64 | BPF_MOV | BPF_K; /* r0 = 0 */
    program[1].code = BPF_JMP | BPF_EXIT;
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insns = (uint64_t)(uintptr_t)program;
    attr.insn_cnt = 2;
    attr.license = (uint64_t)(uintptr_t)"GPL";
    long fd = report("bpf(BPF_PROG_LOAD, socket filter)", syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr));
    if (fd >= 0) close((int)fd);
}

static long port_number(const char *text) {
    char *end;
    long port = strtol(text, &end, 10);
    if (*end || port <= 0 || port > 65535) usage();
    return port;
}

static void port_scan(const char *host, const char *first_text, const char *last_text) {
    long first = port_number(first_text), last = port_number(last_text);
    struct sockaddr_storage address;
    socklen_t length = 0;
    if (last < first || last - first >= 1024 || !loopback(host, &address, &length, (int)first)) usage();
    long connected = 0, refused = 0;
    for (long port = first; port <= last; port++) {
        loopback(host, &address, &length, (int)port);
        int fd = socket(address.ss_family, SOCK_STREAM, 0);
        if (fd < 0) continue;
        if (connect(fd, (struct sockaddr *)&address, length) == 0) connected++;
        else if (errno == ECONNREFUSED) refused++;
        close(fd);
    }
    printf("behave: port-scan %s %ld-%ld connected=%ld refused=%ld\n", host, first, last, connected, refused);
    fflush(stdout);
}

int behave_primitive(const char *action, int extra, char **argv) {
#define PRIMITIVE(name, count) (strcmp(action, name) == 0 && (extra == (count) ? 1 : (usage(), 0)))
    if (PRIMITIVE("userfaultfd", 0)) userfaultfd_call();
    else if (PRIMITIVE("af-alg", 0)) af_alg();
    else if (PRIMITIVE("wx-mmap", 0)) wx_mmap();
    else if (PRIMITIVE("exe-write", 0)) exe_write();
    else if (PRIMITIVE("proc-mem-read", 0)) proc_mem_read();
    else if (PRIMITIVE("vm-readv", 0)) vm_readv();
    else if (PRIMITIVE("set-name", 1)) set_name(argv[2]);
    else if (PRIMITIVE("bpf-load", 0)) bpf_load();
    else if (PRIMITIVE("port-scan", 3)) port_scan(argv[2], argv[3], argv[4]);
    else return 0;
    return 1;
}
