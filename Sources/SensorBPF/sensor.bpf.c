// SPDX-License-Identifier: GPL-2.0
// Caduceus sensor: kernel side. Tracepoints (raw syscalls, sched, capability) always;
// the security_* events from BPF-LSM hooks (at the end of this file) where the start-up
// probe loads an LSM program, otherwise derived from syscall results. This kernel refuses
// BPF-LSM and fentry (lockdown "integrity": EPERM at load) and has no kprobes, so here they
// are derived (see README, "Event sources"). enforcement.bpf.h adds the cgroup programs
// that refuse socket calls.
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
    u32 unqueried_bytes;  // ring buffer bytes this CPU wrote since it last asked what waits (submit)
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
// generated from it (Scripts/generators/generate-syscall-table.py).
#include <asm/unistd_64.h>
#define AT_FDCWD_ -100
#define AT_REMOVEDIR_ 0x200
#define AF_INET_ 2
#define AF_INET6_ 10
#include "task_context.bpf.h"
#include "security_events.bpf.h"

#include "enforcement.bpf.h"
#include "exec_events.bpf.h"

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
    if (nr == __NR_execve || nr == __NR_execveat)
        put_exec_syscall_args(&r, nr, args);
    else
        put_syscall_args(&r, nr, args);
    submit(&r);
    return 0;
}

/// A syscall's arguments, as a global function's argument (a pointer to a sized struct).
struct syscall_args {
    u64 values[SENSOR_MAX_ARGS];
};

/// The security events derived from a syscall's result. A global function, so the verifier
/// checks it once on its own: inlined in on_sys_exit it would be explored again for every state
/// the syscall's own event leaves, past the verifier's limit.
__noinline int derive_from_syscall(u32 nr, const struct syscall_args *args, s64 ret)
{
    if (!args)
        return 0;
    derive_security_events(bpf_get_current_task_btf(), nr, args->values, ret);
    return 0;
}

/// Every syscall's end on the machine: its own event (SENSOR_RULE_EMIT), then the security
/// events derived from its result (SENSOR_RULE_DERIVE). One program for both, since each program
/// attached to the tracepoint is a dispatch paid by every syscall of every process, in scope or not.
/// A call reported at entry comes back here only when it failed and its rule asks for the result.
SEC("tp_btf/sys_exit")
int BPF_PROG(on_sys_exit, struct pt_regs *regs, long ret)
{
    u64 nr64 = regs->orig_ax;
    if (nr64 >= SENSOR_MAX_SYSCALLS)
        return 0;
    u8 flags = config.syscalls[nr64].flags;
    if (!(flags & (SENSOR_RULE_EMIT | SENSOR_RULE_DERIVE)))
        return 0;
    if ((flags & SENSOR_RULE_AT_ENTER) && !(ret < 0 && (flags & SENSOR_RULE_FAILED_AT_EXIT)))
        return 0;
    struct task_struct *task = bpf_get_current_task_btf();
    if (!in_scope(task))
        return 0;
    u32 nr = nr64;
    struct syscall_args args;
    read_syscall_args(regs, args.values);
    struct record r;
    if ((flags & SENSOR_RULE_EMIT) && record_begin(&r, task, nr, ret)) {
        if (nr == __NR_execve || nr == __NR_execveat) {
            // A refused exec (EACCES on a noexec mount, ENOENT, ENOEXEC): its result, marked as the
            // exit of a call whose entry was reported already.
            ((struct sensor_event_header *)r.scratch->record)->flags |= SENSOR_EVENT_EXIT;
            put_exec_syscall_args(&r, nr, args.values);
        } else {
            put_syscall_args(&r, nr, args.values);
        }
        submit(&r);
    }
    if (flags & SENSOR_RULE_DERIVE)
        derive_from_syscall(nr, &args, ret);
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
    put_exec_context(&r, 7, task, bprm->file->f_inode);
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
