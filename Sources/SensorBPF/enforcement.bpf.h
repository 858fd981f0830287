// Enforcement, included by sensor.bpf.c after its maps: the kill patterns checked at a
// syscall's entry and at exec, and the cgroup programs that refuse socket calls.
#ifndef CADUCEUS_ENFORCEMENT_BPF_H
#define CADUCEUS_ENFORCEMENT_BPF_H

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

#endif
