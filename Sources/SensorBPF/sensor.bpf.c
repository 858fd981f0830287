// SPDX-License-Identifier: GPL-2.0
// Caduceus sensor: kernel side. Tracepoints only (raw syscalls, sched, capability),
// since kprobes, fentry and BPF-LSM are unavailable on the kernels we target; the
// security_* events are derived from syscall results (see README, "Event sources").
//
// Flow of every program: scope check (cheap, before anything is read), header,
// arguments into a per-CPU scratch record, one bpf_ringbuf_output. A full ring
// buffer is counted in `stats`, never silent.
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "sensor.h"

char LICENSE[] SEC("license") = "GPL";

/// Written by user space before load; frozen, so the verifier treats it as constant.
const volatile struct sensor_config config SEC(".rodata.config") = {};

// Record layout limits. Offsets are masked with OFFSET_MASK before every write so the
// verifier can bound them; the buffer is larger than any masked offset plus one write.
#define RECORD_MAX 8192
#define OFFSET_MASK (RECORD_MAX - 1)
#define STR_MAX 4096
#define ARGV_STR_MAX 1024
#define ARGV_MAX 32
#define SOCKADDR_MAX 128
#define SCRATCH_SIZE (RECORD_MAX * 2 + STR_MAX + 64)
#define PATH_SIZE 8192
#define PATH_MASK (PATH_SIZE - 1)
#define NAME_MAX_ 255
#define PATH_DEPTH 24

struct scratch {
    union {
        u8 record[SCRATCH_SIZE];
        // Named here so their layout is in the object's BTF for EventLayoutTests.
        struct {
            struct sensor_event_header header;
            struct sensor_arg_header first_argument;
        } layout;
    };
    u8 path[PATH_SIZE + NAME_MAX_ + 1];
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 1 << 24);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct scratch);
} scratch_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct sensor_stats);
} stats SEC(".maps");

#define FILTER_MAP(name, key_type, entries)       \
    struct {                                      \
        __uint(type, BPF_MAP_TYPE_HASH);          \
        __uint(max_entries, entries);             \
        __type(key, key_type);                    \
        __type(value, u8);                        \
    } name SEC(".maps")

FILTER_MAP(pid_filter, u32, 1024);
FILTER_MAP(uid_filter, u32, 256);
FILTER_MAP(cgroup_filter, u64, 256);
FILTER_MAP(old_mnt_ns, u32, 4096);

struct comm_key { char comm[SENSOR_TASK_COMM_LEN]; };
FILTER_MAP(comm_filter, struct comm_key, 256);

// Enforcement (`action: kill` rules the kernel can evaluate). Filled by user space before
// attach; unused, and their programs not loaded, unless config.kill_patterns > 0.
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, SENSOR_MAX_KILL_PATTERNS);
    __type(key, u32);
    __type(value, struct sensor_kill_pattern);
} kill_patterns SEC(".maps");

FILTER_MAP(kill_cgroup, u64, 256);

// A learned profile's executables, enforced in its containers' cgroups (config.exec_allow).
struct exec_allow_key { char path[SENSOR_EXEC_ALLOW_PATH_LEN]; };
FILTER_MAP(exec_allow, struct exec_allow_key, SENSOR_MAX_EXEC_ALLOW);
FILTER_MAP(exec_allow_cgroup, u64, 256);

/// Processes (tgid) the kernel killed, with the rule slot: their last records are marked.
struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, u32);
    __type(value, u32);
} killed SEC(".maps");

/// Calls a cgroup program refused (cgroup/connect4, ...), by thread (pid_tgid): the call's
/// records at sys_exit are marked SENSOR_EVENT_DENIED with the rule slot (record_begin).
struct denial {
    u32 slot;
    u32 nr;  // connect, bind, sendto or sendmsg
};

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 4096);
    __type(key, u64);
    __type(value, struct denial);
} denied SEC(".maps");

/// What a kill pattern is compared with: one per CPU, zeroed past the string's end.
#define KILL_SUBJECT_LEN 256
#define KILL_SUBJECT_CGROUP 0x01  // asked by a cgroup program: only patterns it refuses (SENSOR_KILL_CGROUP)
#define KILL_SUBJECT_INET 0x02    // a socket call with an IPv4 or IPv6 address (which the cgroup programs see)
struct kill_subject {
    u32 nr;
    u32 kind;
    u32 length;  // an address's bytes (4 or 16); 0 for text
    u32 flags;   // KILL_SUBJECT_*
    char text[KILL_SUBJECT_LEN];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, u32);
    __type(value, struct kill_subject);
} kill_scratch SEC(".maps");

// x86_64 syscall numbers (__NR_*) from the kernel's own header, as the Swift event table is
// generated from it (Scripts/generate-syscall-table.py).
#include <asm/unistd_64.h>
#define AT_FDCWD_ -100
#define AT_REMOVEDIR_ 0x200
#define AF_INET_ 2
#define AF_INET6_ 10
#include "task_context.bpf.h"
#include "security_events.bpf.h"

// ---------------------------------------------------------------- enforcement

struct kill_search {
    struct kill_subject *subject;
    s32 found;  // the matching pattern's rule slot, or -1
};

/// One pattern against the subject (bpf_loop callback: verified once, whatever the count).
static long kill_pattern_matches(u64 index, void *context)
{
    struct kill_search *search = context;
    u32 key = index;
    struct sensor_kill_pattern *p = bpf_map_lookup_elem(&kill_patterns, &key);
    struct kill_subject *subject = search->subject;
    if (!p || !subject)
        return 1;
    if (p->kind != subject->kind)
        return 0;
    if (p->kind != SENSOR_KILL_EXEC_PATH && p->kind != SENSOR_KILL_EXEC_NAME && p->nr != subject->nr)
        return 0;
    if (p->flags & SENSOR_KILL_CGROUP) {
        // Refused by a cgroup program; at sys_enter only an any-call pattern's calls of other
        // socket families (AF_UNIX, ...), which the cgroup programs do not see, are killed.
        if (!(subject->flags & KILL_SUBJECT_CGROUP) && (p->kind != SENSOR_KILL_SYSCALL || (subject->flags & KILL_SUBJECT_INET)))
            return 0;
    } else if (subject->flags & KILL_SUBJECT_CGROUP) {
        return 0;
    }
    if (p->kind == SENSOR_KILL_CONNECT_ADDR && p->length != subject->length)
        return 0;
    u32 n = p->length;
    if (n > SENSOR_KILL_TEXT_LEN)
        return 0;
    for (u32 i = 0; i < SENSOR_KILL_TEXT_LEN; i++) {
        if (i >= n)
            break;
        if (subject->text[i] != p->text[i])
            return 0;
    }
    if (!(p->flags & SENSOR_KILL_PREFIX) && n > 0 && subject->text[n & (KILL_SUBJECT_LEN - 1)] != 0)
        return 0;
    if (p->flags & SENSOR_KILL_CONTAINERS) {
        struct task_struct *task = bpf_get_current_task_btf();
        if (mount_ns_of(task) == config.host_mnt_ns)
            return 0;
    }
    search->found = p->rule;
    return 1;
}

/// Kills the current process when a pattern matches the subject: SIGKILL is delivered on
/// the way back to user space, so the syscall's result is never used.
static __always_inline void enforce(struct task_struct *task, struct kill_subject *subject)
{
    if (config.kill_cgroups) {
        u64 cgroup_id = cgroup_id_of(task);
        if (!bpf_map_lookup_elem(&kill_cgroup, &cgroup_id))
            return;
    }
    struct kill_search search = {.subject = subject, .found = -1};
    bpf_loop(config.kill_patterns & (SENSOR_MAX_KILL_PATTERNS * 2 - 1), kill_pattern_matches, &search, 0);
    if (search.found < 0)
        return;
    bpf_send_signal(9);
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    u32 slot = search.found;
    bpf_map_update_elem(&killed, &tgid, &slot, BPF_ANY);
}

_Static_assert(KILL_SUBJECT_LEN == SENSOR_EXEC_ALLOW_PATH_LEN, "an exec's path is looked up in exec_allow as it is");

/// A learned profile's allow list: in a profiled container's cgroup, an exec of a file whose
/// resolved path (`subject`, NUL-padded) the profile does not list is killed before the new
/// image runs an instruction.
static __always_inline void enforce_exec_allow_list(struct task_struct *task, struct kill_subject *subject)
{
    u64 cgroup_id = cgroup_id_of(task);
    if (!bpf_map_lookup_elem(&exec_allow_cgroup, &cgroup_id))
        return;
    if (bpf_map_lookup_elem(&exec_allow, subject->text))
        return;
    bpf_send_signal(9);
    u32 tgid = bpf_get_current_pid_tgid() >> 32;
    u32 slot = SENSOR_KILL_SLOT_EXEC_ALLOW;
    bpf_map_update_elem(&killed, &tgid, &slot, BPF_ANY);
}

static __always_inline struct kill_subject *kill_subject_begin(u32 nr, u32 kind)
{
    u32 zero = 0;
    struct kill_subject *subject = bpf_map_lookup_elem(&kill_scratch, &zero);
    if (!subject)
        return NULL;
    subject->nr = nr;
    subject->kind = kind;
    subject->length = 0;
    subject->flags = 0;
    return subject;
}

/// Whether an IPv6 address (4 words, network order) is an IPv4-mapped one (::ffff:a.b.c.d).
static __always_inline bool ipv4_mapped(const u32 *words)
{
    return words[0] == 0 && words[1] == 0 && words[2] == bpf_htonl(0xffff);
}

/// The address a socket call passes (connect and bind: 2nd argument; sendto: 5th; sendmsg:
/// msg_name of the msghdr), NULL for other calls.
static __always_inline const void *socket_call_address(struct pt_regs *regs, u32 nr)
{
    if (nr == __NR_connect || nr == __NR_bind)
        return (const void *)regs->si;
    if (nr == __NR_sendto)
        return (const void *)regs->r8;
    if (nr == __NR_sendmsg) {
        const void *name = NULL;
        bpf_probe_read_user(&name, sizeof(name), (const void *)regs->si);  // msg_name is the first member
        return name;
    }
    return NULL;
}

/// The enforced syscalls at entry: opens by the path the caller passed (before any byte
/// can be read), connect by the address, module loads, ptrace, mount (any call) by number.
SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter_enforce, struct pt_regs *regs, long id)
{
    if (id < 0 || id >= SENSOR_MAX_SYSCALLS)
        return 0;
    u32 nr = id;
    if (!(config.syscalls[nr].flags & SENSOR_RULE_ENFORCE))
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    const char *path = NULL;
    if (nr == __NR_open || nr == __NR_creat)
        path = (const char *)regs->di;
    else if (nr == __NR_openat || nr == __NR_openat2)
        path = (const char *)regs->si;
    struct kill_subject *subject;
    if (path) {
        subject = kill_subject_begin(nr, SENSOR_KILL_OPEN_PATH);
        if (!subject)
            return 0;
        __builtin_memset(subject->text, 0, sizeof(subject->text));
        bpf_probe_read_user_str(subject->text, KILL_SUBJECT_LEN, path);
        enforce(task, subject);
    }
    bool inet = false;
    const void *user_address = socket_call_address(regs, nr);
    if (user_address) {
        subject = kill_subject_begin(nr, SENSOR_KILL_CONNECT_ADDR);
        if (!subject)
            return 0;
        __builtin_memset(subject->text, 0, sizeof(subject->text));
        // Fixed sizes (sockaddr_in6, else sockaddr_in): past the caller's addrlen is only read.
        u8 address[28] = {};
        if (bpf_probe_read_user(address, sizeof(address), user_address) == 0
            || bpf_probe_read_user(address, 16, user_address) == 0) {
            u16 family = *(u16 *)address;
            subject->flags = KILL_SUBJECT_INET;
            if (family == AF_INET_) {
                inet = true;
                subject->length = 4;
                __builtin_memcpy(subject->text, address + 4, 4);
                enforce(task, subject);
            } else if (family == AF_INET6_) {
                inet = true;
                subject->length = 16;
                __builtin_memcpy(subject->text, address + 8, 16);
                enforce(task, subject);
                // ::ffff:a.b.c.d reaches a.b.c.d: the IPv4 patterns apply too.
                if (ipv4_mapped((const u32 *)(address + 8))) {
                    subject->length = 4;
                    __builtin_memcpy(subject->text, address + 20, 4);
                    __builtin_memset(subject->text + 4, 0, 12);
                    enforce(task, subject);
                }
            }
        }
    }
    subject = kill_subject_begin(nr, SENSOR_KILL_SYSCALL);
    if (!subject)
        return 0;
    if (inet)
        subject->flags = KILL_SUBJECT_INET;
    enforce(task, subject);
    return 0;
}

// ---------------------------------------------------------------- refusal on the cgroup hooks
//
// Attached (link-based, so they go with the sensor's file descriptors) to the root of the
// cgroup v2 hierarchy, which every cgroup inherits: they run for every IPv4/IPv6 connect,
// bind and addressed UDP send on the machine and filter here (scope, --enforce-container
// cgroups, a pattern's containers-only flag). Returning 0 refuses the call with EPERM before
// it does anything: no SYN leaves, no port is bound, no datagram is sent.

/// 1 lets the call run; 0 refuses it, and records the rule slot for the call's records.
static __always_inline int cgroup_verdict(u32 nr, const u32 *address, u32 length)
{
    if (!config.cgroup_deny)
        return 1;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 1;
    if (config.kill_cgroups) {
        u64 cgroup_id = cgroup_id_of(task);
        if (!bpf_map_lookup_elem(&kill_cgroup, &cgroup_id))
            return 1;
    }
    struct kill_subject *subject = kill_subject_begin(nr, SENSOR_KILL_CONNECT_ADDR);
    if (!subject)
        return 1;
    subject->flags = KILL_SUBJECT_CGROUP | KILL_SUBJECT_INET;
    __builtin_memset(subject->text, 0, 16);
    if (length == 16)
        __builtin_memcpy(subject->text, address, 16);
    else
        __builtin_memcpy(subject->text, address, 4);
    subject->length = length;
    u32 count = config.kill_patterns & (SENSOR_MAX_KILL_PATTERNS * 2 - 1);
    struct kill_search search = {.subject = subject, .found = -1};
    bpf_loop(count, kill_pattern_matches, &search, 0);
    if (search.found < 0) {
        subject->kind = SENSOR_KILL_SYSCALL;
        bpf_loop(count, kill_pattern_matches, &search, 0);
    }
    u64 pid_tgid = bpf_get_current_pid_tgid();
    if (search.found < 0) {
        bpf_map_delete_elem(&denied, &pid_tgid);  // an earlier refusal of this thread is not this call's
        return 1;
    }
    struct denial denial = {.slot = search.found, .nr = nr};
    bpf_map_update_elem(&denied, &pid_tgid, &denial, BPF_ANY);
    return 0;
}

static __always_inline int cgroup_verdict6(u32 nr, struct bpf_sock_addr *ctx)
{
    u32 address[4] = {ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3]};
    // ::ffff:a.b.c.d reaches a.b.c.d through an IPv6 socket without the IPv4 hook: IPv4 patterns apply.
    if (ipv4_mapped(address))
        return cgroup_verdict(nr, &address[3], 4);
    return cgroup_verdict(nr, address, 16);
}

/// The two programs of a hook (IPv4, IPv6): the address from the context, the verdict for the
/// call the hook stands for. An addressed UDP datagram reaches sendmsg4/6 whether sent with
/// sendto or sendmsg; KernelEnforcement makes a pattern of each from a rule naming both, so
/// the sendto pattern stands for the pair here.
#define CGROUP_PROGRAMS(hook, nr)                                  \
    SEC("cgroup/" #hook "4")                                       \
    int cgroup_##hook##4(struct bpf_sock_addr *ctx)                \
    {                                                              \
        u32 address = ctx->user_ip4;                               \
        return cgroup_verdict(nr, &address, 4);                    \
    }                                                              \
    SEC("cgroup/" #hook "6")                                       \
    int cgroup_##hook##6(struct bpf_sock_addr *ctx)                \
    {                                                              \
        return cgroup_verdict6(nr, ctx);                           \
    }

CGROUP_PROGRAMS(bind, __NR_bind)
CGROUP_PROGRAMS(sendmsg, __NR_sendto)

#define SOCK_DGRAM_ 2

/// A UDP socket connected to an address sends there with send(2) or write(2), which no hook
/// sees: its connect is refused for the send patterns too.
SEC("cgroup/connect4")
int cgroup_connect4(struct bpf_sock_addr *ctx)
{
    u32 address = ctx->user_ip4;
    int verdict = cgroup_verdict(__NR_connect, &address, 4);
    if (verdict && ctx->type == SOCK_DGRAM_)
        verdict = cgroup_verdict(__NR_sendto, &address, 4);
    return verdict;
}

SEC("cgroup/connect6")
int cgroup_connect6(struct bpf_sock_addr *ctx)
{
    int verdict = cgroup_verdict6(__NR_connect, ctx);
    if (verdict && ctx->type == SOCK_DGRAM_)
        verdict = cgroup_verdict6(__NR_sendto, ctx);
    return verdict;
}

// ---------------------------------------------------------------- syscalls

static __always_inline void read_syscall_args(struct pt_regs *regs, u64 *args)
{
    args[0] = regs->di;
    args[1] = regs->si;
    args[2] = regs->dx;
    args[3] = regs->r10;
    args[4] = regs->r8;
    args[5] = regs->r9;
}

/// Arguments by the kinds in the syscall's rule; a sockaddr's length is the next argument
/// (a value for inputs such as connect, a pointer to it for outputs such as accept).
static __always_inline void put_syscall_args(struct record *r, u32 nr, const u64 *args)
{
    for (int i = 0; i < SENSOR_MAX_ARGS; i++) {
        u8 kind = config.syscalls[nr].kinds[i];
        if (kind == SENSOR_ARG_NONE)
            break;
        u64 value = args[i];
        switch (kind) {
        case SENSOR_ARG_S32:
            put_u64(r, i, kind, (u64)(s64)(s32)value);
            break;
        case SENSOR_ARG_U32:
            put_u64(r, i, kind, (u32)value);
            break;
        case SENSOR_ARG_STR:
            put_user_str(r, i, (const char *)value);
            break;
        case SENSOR_ARG_SOCKADDR: {
            u64 length = SOCKADDR_MAX;
            if (i + 1 < SENSOR_MAX_ARGS) {
                u8 next = config.syscalls[nr].kinds[i + 1];
                if (next == SENSOR_ARG_S32 || next == SENSOR_ARG_U32) {
                    length = (u32)args[i + 1];
                } else {
                    int out_length = 0;
                    if (args[i + 1])
                        bpf_probe_read_user(&out_length, sizeof(out_length), (void *)args[i + 1]);
                    length = out_length > 0 ? out_length : 0;
                }
            }
            put_user_sockaddr(r, i, (const void *)value, length);
            break;
        }
        default:
            put_u64(r, i, kind, value);
        }
    }
}

/// argv of execve: each string read from the caller's array, NUL-terminated, back to back.
static __always_inline void put_user_argv(struct record *r, u8 index, const char *const *argv)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_STRARR);
    if (!a)
        return;
    u32 start = r->offset + sizeof(*a);
    u32 offset = start;
    for (int i = 0; i < ARGV_MAX; i++) {
        const char *arg = NULL;
        if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) < 0 || !arg)
            break;
        if (offset > RECORD_MAX - ARGV_STR_MAX)
            break;
        long n = bpf_probe_read_user_str(&r->scratch->record[offset & OFFSET_MASK], ARGV_STR_MAX, arg);
        if (n <= 0)
            break;
        offset += n;
    }
    arg_end(r, a, offset - start);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(on_sys_enter, struct pt_regs *regs, long id)
{
    if (id < 0 || id >= SENSOR_MAX_SYSCALLS)
        return 0;
    u32 nr = id;
    if (!(config.syscalls[nr].flags & SENSOR_RULE_AT_ENTER))
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    u64 args[SENSOR_MAX_ARGS];
    read_syscall_args(regs, args);
    struct record r;
    if (!record_begin(&r, task, nr, 0))
        return 0;
    if (nr == __NR_execve) {
        put_user_str(&r, 0, (const char *)args[0]);
        put_user_argv(&r, 1, (const char *const *)args[1]);
    } else if (nr == __NR_execveat) {
        put_u64(&r, 0, SENSOR_ARG_S32, (u64)(s64)(s32)args[0]);
        put_user_str(&r, 1, (const char *)args[1]);
        put_user_argv(&r, 2, (const char *const *)args[2]);
        put_u64(&r, 3, SENSOR_ARG_S32, (u64)(s64)(s32)args[4]);
    } else {
        put_syscall_args(&r, nr, args);
    }
    submit(&r);
    return 0;
}

/// The common start of both sys_exit programs: the syscall's number, when its rule has
/// `flag` and the task is in scope, with its arguments from the saved registers.
static __always_inline bool exit_prologue(struct pt_regs *regs, u8 flag, u32 *nr, struct task_struct **task, u64 *args)
{
    u64 nr64 = regs->orig_ax;
    if (nr64 >= SENSOR_MAX_SYSCALLS)
        return false;
    u8 flags = config.syscalls[nr64].flags;
    if (!(flags & flag) || (flags & SENSOR_RULE_AT_ENTER))
        return false;
    *task = bpf_get_current_task_btf();
    if (!in_scope(*task))
        return false;
    *nr = nr64;
    read_syscall_args(regs, args);
    return true;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
    u32 nr;
    struct task_struct *task;
    u64 args[SENSOR_MAX_ARGS];
    struct record r;
    if (exit_prologue(regs, SENSOR_RULE_EMIT, &nr, &task, args) && record_begin(&r, task, nr, ret)) {
        put_syscall_args(&r, nr, args);
        submit(&r);
    }
    return 0;
}

/// The security events derived from syscall results: a program of its own on the same
/// tracepoint, so each is verified (and costs) only what it does.
SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit_security, struct pt_regs *regs, long ret)
{
    u32 nr;
    struct task_struct *task;
    u64 args[SENSOR_MAX_ARGS];
    if (exit_prologue(regs, SENSOR_RULE_DERIVE, &nr, &task, args))
        derive_security_events(task, nr, args, ret);
    return 0;
}

// ---------------------------------------------------------------- process lifecycle

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_sched_process_fork, struct task_struct *parent, struct task_struct *child)
{
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SCHED_PROCESS_FORK, 0))
        return 0;
    struct task_struct *parent_leader = parent->group_leader;
    struct task_struct *child_leader = child->group_leader;
    put_u64(&r, 0, SENSOR_ARG_S32, parent->pid);
    put_u64(&r, 1, SENSOR_ARG_S32, ns_tid_of(parent));
    put_u64(&r, 2, SENSOR_ARG_S32, parent->tgid);
    put_u64(&r, 3, SENSOR_ARG_S32, ns_tid_of(parent_leader));
    put_u64(&r, 4, SENSOR_ARG_S32, child->pid);
    put_u64(&r, 5, SENSOR_ARG_S32, ns_tid_of(child));
    put_u64(&r, 6, SENSOR_ARG_S32, child->tgid);
    put_u64(&r, 7, SENSOR_ARG_S32, ns_tid_of(child_leader));
    submit(&r);
    return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_sched_process_exec, struct task_struct *p, int old_pid, struct linux_binprm *bprm)
{
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    struct file *file = BPF_CORE_READ(bprm, file);
    struct dentry *dentry = BPF_CORE_READ(file, f_path.dentry);
    struct vfsmount *mnt = BPF_CORE_READ(file, f_path.mnt);
    u32 dev = BPF_CORE_READ(file, f_inode, i_sb, s_dev);
    u64 ino = BPF_CORE_READ(file, f_inode, i_ino);
    // The controlling terminal as /proc/PID/stat's tty_nr encodes it (0: none), read here
    // because user space reading /proc later loses the race with short-lived processes.
    // No branch: reads through a NULL tty fail and give 0. Kept before the path walk below,
    // so the verifier does not explore it once per path it finds there.
    if (config.kill_patterns || config.exec_allow) {
        // Exec of a path or name, or outside a profile's executables: killed before the new
        // image runs an instruction.
        struct kill_subject *subject = kill_subject_begin(__NR_execve, SENSOR_KILL_EXEC_NAME);
        if (subject) {
            __builtin_memset(subject->text, 0, sizeof(subject->text));
            if (config.kill_patterns) {
                bpf_get_current_comm(subject->text, SENSOR_TASK_COMM_LEN);
                enforce(task, subject);
            }
            subject->kind = SENSOR_KILL_EXEC_PATH;
            __builtin_memset(subject->text, 0, sizeof(subject->text));
            u32 zero = 0;
            struct scratch *scratch = bpf_map_lookup_elem(&scratch_map, &zero);
            if (scratch) {
                u32 pos = resolve_path(scratch, dentry, mnt);
                bpf_probe_read_kernel_str(subject->text, KILL_SUBJECT_LEN, &scratch->path[pos & PATH_MASK]);
            }
            if (config.kill_patterns)
                enforce(task, subject);
            if (config.exec_allow)
                enforce_exec_allow_list(task, subject);
        }
    }
    struct tty_struct *tty = BPF_CORE_READ(task, signal, tty);
    u32 major = BPF_CORE_READ(tty, driver, major);
    u32 minor = BPF_CORE_READ(tty, driver, minor_start) + BPF_CORE_READ(tty, index);
    u32 tty_nr = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
    struct record r;

    if (WANTS(SENSOR_WANT_BPRM_CHECK) && !config.lsm && record_begin(&r, task, SENSOR_EVENT_SECURITY_BPRM_CHECK, 0)) {
        put_resolved_path(&r, 0, resolve_path(r.scratch, dentry, mnt));
        put_u64(&r, 1, SENSOR_ARG_U32, dev);
        put_u64(&r, 2, SENSOR_ARG_U64, ino);
        submit(&r);
    }
    if (!WANTS(SENSOR_WANT_EXEC) || !record_begin(&r, task, SENSOR_EVENT_SCHED_PROCESS_EXEC, 0))
        return 0;
    put_kernel_str(&r, 0, BPF_CORE_READ(bprm, filename));
    put_resolved_path(&r, 1, resolve_path(r.scratch, dentry, mnt));
    put_u64(&r, 2, SENSOR_ARG_U32, dev);
    put_u64(&r, 3, SENSOR_ARG_U64, ino);
    // argv as the new image sees it: the block between arg_start and arg_end.
    struct sensor_arg_header *a = arg_begin(&r, 4, SENSOR_ARG_STRARR);
    if (a) {
        unsigned long start = BPF_CORE_READ(task, mm, arg_start);
        unsigned long end = BPF_CORE_READ(task, mm, arg_end);
        u32 n = end > start ? end - start : 0;
        if (n > STR_MAX)
            n = STR_MAX;
        if (bpf_probe_read_user((void *)a + sizeof(*a), n & (STR_MAX * 2 - 1), (void *)start) < 0)
            n = 0;
        arg_end(&r, a, n);
    }
    put_kernel_str(&r, 5, BPF_CORE_READ(bprm, interp));
    put_u64(&r, 6, SENSOR_ARG_U32, tty_nr);
    submit(&r);
    return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_sched_process_exit, struct task_struct *p)
{
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SCHED_PROCESS_EXIT, 0))
        return 0;
    int status = BPF_CORE_READ(task, exit_code);
    put_u64(&r, 0, SENSOR_ARG_S64, (status >> 8) & 0xff);
    put_u64(&r, 1, SENSOR_ARG_S32, status & 0x7f);
    submit(&r);
    if ((config.kill_patterns || config.exec_allow) && task->pid == task->tgid) {
        u32 tgid = task->tgid;
        bpf_map_delete_elem(&killed, &tgid);
    }
    return 0;
}

SEC("tp_btf/cap_capable")
int BPF_PROG(on_cap_capable, const void *cred, const void *target_ns, const void *capable_ns, int cap, int ret)
{
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_CAP_CAPABLE, ret))
        return 0;
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs((struct task_struct *)bpf_get_current_task_btf());
    put_u64(&r, 0, SENSOR_ARG_S32, cap);
    put_u64(&r, 1, SENSOR_ARG_S32, BPF_CORE_READ(regs, orig_ax));
    submit(&r);
    return 0;
}

// ---------------------------------------------------------------- BPF-LSM (where the kernel allows it)
//
// The same security events from the LSM hooks themselves. Not loaded unless the start-up
// probe loaded an LSM program (lockdown refuses them on our kernels, so these have only
// been compiled, never verified here); if the kernel refuses them anyway, user space
// loads the object again without them and keeps the tracepoint-derived events.

/// The syscall arguments of the current task, for the fd an LSM hook does not get.
static __always_inline u64 current_syscall_arg0(void)
{
    struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
    return BPF_CORE_READ(regs, di);
}

static __always_inline bool lsm_wants(u32 bit, struct task_struct **task)
{
    if (!WANTS(bit) || !config.lsm)
        return false;
    *task = bpf_get_current_task_btf();
    return in_scope(*task);
}

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
    struct task_struct *task;
    if (lsm_wants(SENSOR_WANT_FILE_OPEN, &task))
        emit_file_open_of(task, file);
    return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm_check, struct linux_binprm *bprm)
{
    struct task_struct *task;
    struct record r;
    if (!lsm_wants(SENSOR_WANT_BPRM_CHECK, &task) || !record_begin(&r, task, SENSOR_EVENT_SECURITY_BPRM_CHECK, 0))
        return 0;
    struct file *file = BPF_CORE_READ(bprm, file);
    put_resolved_path(&r, 0, resolve_path(r.scratch, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt)));
    put_u64(&r, 1, SENSOR_ARG_U32, BPF_CORE_READ(file, f_inode, i_sb, s_dev));
    put_u64(&r, 2, SENSOR_ARG_U64, BPF_CORE_READ(file, f_inode, i_ino));
    submit(&r);
    return 0;
}

SEC("lsm/inode_unlink")
int BPF_PROG(lsm_inode_unlink, struct inode *dir, struct dentry *dentry)
{
    struct task_struct *task;
    struct record r;
    if (!lsm_wants(SENSOR_WANT_INODE_UNLINK, &task) || !record_begin(&r, task, SENSOR_EVENT_SECURITY_INODE_UNLINK, 0))
        return 0;
    // The hook has no mount: the path runs to the root of the dentry's filesystem.
    put_resolved_path(&r, 0, resolve_path(r.scratch, dentry, NULL));
    submit(&r);
    return 0;
}

SEC("lsm/socket_create")
int BPF_PROG(lsm_socket_create, int family, int type, int protocol, int kern)
{
    struct task_struct *task;
    struct record r;
    if (!lsm_wants(SENSOR_WANT_SOCKET_CREATE, &task) || !record_begin(&r, task, SENSOR_EVENT_SECURITY_SOCKET_CREATE, 0))
        return 0;
    put_u64(&r, 0, SENSOR_ARG_S32, family);
    put_u64(&r, 1, SENSOR_ARG_S32, type);
    put_u64(&r, 2, SENSOR_ARG_S32, protocol);
    put_u64(&r, 3, SENSOR_ARG_S32, kern);
    submit(&r);
    return 0;
}

/// connect and bind: the address the kernel already copied in, and the fd from the syscall.
static __always_inline void lsm_socket_address_event(u32 bit, u32 event_id, void *address, int length)
{
    struct task_struct *task;
    struct record r;
    if (!lsm_wants(bit, &task) || !record_begin(&r, task, event_id, 0))
        return;
    put_u64(&r, 0, SENSOR_ARG_S32, (s32)current_syscall_arg0());
    struct sensor_arg_header *a = arg_begin(&r, 1, SENSOR_ARG_SOCKADDR);
    if (!a)
        return;
    u32 n = length > SOCKADDR_MAX ? SOCKADDR_MAX : (length > 0 ? length : 0);
    if (bpf_probe_read_kernel((void *)a + sizeof(*a), n & (SOCKADDR_MAX * 2 - 1), address) < 0)
        n = 0;
    arg_end(&r, a, n);
    submit(&r);
}

SEC("lsm/socket_connect")
int BPF_PROG(lsm_socket_connect, struct socket *sock, void *address, int length)
{
    lsm_socket_address_event(SENSOR_WANT_SOCKET_CONNECT, SENSOR_EVENT_SECURITY_SOCKET_CONNECT, address, length);
    return 0;
}

SEC("lsm/socket_bind")
int BPF_PROG(lsm_socket_bind, struct socket *sock, void *address, int length)
{
    lsm_socket_address_event(SENSOR_WANT_SOCKET_BIND, SENSOR_EVENT_SECURITY_SOCKET_BIND, address, length);
    return 0;
}

SEC("lsm/socket_listen")
int BPF_PROG(lsm_socket_listen, struct socket *sock, int backlog)
{
    struct task_struct *task;
    if (!lsm_wants(SENSOR_WANT_SOCKET_LISTEN, &task))
        return 0;
    u64 args[SENSOR_MAX_ARGS] = {current_syscall_arg0(), (u64)backlog};
    emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_LISTEN, args, 0);
    return 0;
}

SEC("lsm/socket_accept")
int BPF_PROG(lsm_socket_accept, struct socket *sock, struct socket *newsock)
{
    struct task_struct *task;
    if (!lsm_wants(SENSOR_WANT_SOCKET_ACCEPT, &task))
        return 0;
    u64 args[SENSOR_MAX_ARGS] = {current_syscall_arg0()};
    emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_ACCEPT, args, 0);
    return 0;
}

SEC("lsm/sb_mount")
int BPF_PROG(lsm_sb_mount, const char *dev_name, struct path *path, const char *type, unsigned long flags, void *data)
{
    struct task_struct *task;
    struct record r;
    if (!lsm_wants(SENSOR_WANT_SB_MOUNT, &task) || !record_begin(&r, task, SENSOR_EVENT_SECURITY_SB_MOUNT, 0))
        return 0;
    put_kernel_str(&r, 0, dev_name);
    put_resolved_path(&r, 1, resolve_path(r.scratch, BPF_CORE_READ(path, dentry), BPF_CORE_READ(path, mnt)));
    put_kernel_str(&r, 2, type);
    put_u64(&r, 3, SENSOR_ARG_U64, flags);
    submit(&r);
    return 0;
}
