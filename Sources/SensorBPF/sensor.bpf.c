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

// x86_64 syscall numbers of the calls that security events are derived from.
#define NR_open 2
#define NR_socket 41
#define NR_connect 42
#define NR_accept 43
#define NR_bind 49
#define NR_listen 50
#define NR_execve 59
#define NR_creat 85
#define NR_unlink 87
#define NR_mount 165
#define NR_openat 257
#define NR_unlinkat 263
#define NR_accept4 288
#define NR_execveat 322
#define NR_openat2 437
#define AT_FDCWD_ -100
#define AT_REMOVEDIR_ 0x200
#define AF_INET_ 2
#define AF_INET6_ 10

// ---------------------------------------------------------------- task facts

// Every program is tp_btf, so `task` is a BTF pointer: plain field loads are checked by
// the verifier and cost a load each, not a helper call. Only a variable array index
// (pid numbers, cgroup subsystems) goes through bpf_probe_read_kernel.

static __always_inline u32 mount_ns_of(struct task_struct *task)
{
    return task->nsproxy->mnt_ns->ns.inum;
}

static __always_inline u64 cgroup_id_of(struct task_struct *task)
{
    if (!config.cgroup_v1)
        return bpf_get_current_cgroup_id();
    // cgroup v1: the id of the task's cgroup in the hierarchy of one subsystem.
    u64 slot = (u64)task->cgroups + bpf_core_field_offset(struct css_set, subsys)
        + (config.cgroup_v1_subsys & 15) * sizeof(void *);
    struct cgroup_subsys_state *css = NULL;
    bpf_probe_read_kernel(&css, sizeof(css), (void *)slot);
    return BPF_CORE_READ(css, cgroup, kn, id);
}

/// The task's pid number and namespace at its own (deepest) level.
static __always_inline struct upid upid_at(struct pid *pid, unsigned int level)
{
    struct upid up = {};
    u64 address = (u64)pid + bpf_core_field_offset(struct pid, numbers) + (level & 31) * sizeof(struct upid);
    bpf_probe_read_kernel(&up, sizeof(up), (void *)address);
    return up;
}

/// The task's id as seen from its own pid namespace.
static __always_inline u32 ns_tid_of(struct task_struct *task)
{
    struct pid *pid = task->thread_pid;
    return upid_at(pid, pid->level).nr;
}

/// The parent's id as the task sees it: 0 when the parent is outside the task's pid
/// namespace (a container's init), as getppid() would say.
static __always_inline u32 ns_ppid_of(struct task_struct *task, struct task_struct *parent_leader)
{
    struct pid *pid = task->thread_pid;
    unsigned int level = pid->level;
    struct pid *parent_pid = parent_leader->thread_pid;
    if (parent_pid->level < level || level > 31)
        return 0;
    struct upid own = upid_at(pid, level);
    struct upid parent = upid_at(parent_pid, level);
    return parent.ns == own.ns ? parent.nr : 0;
}

static __always_inline u32 pid_ns_of(struct task_struct *task)
{
    struct pid *pid = task->thread_pid;
    return BPF_CORE_READ(upid_at(pid, pid->level).ns, ns.inum);
}

/// True when the current task is in the configured scope and passes every filter.
/// Runs before anything else, so out-of-scope work costs a few reads and no output.
static __always_inline bool in_scope(struct task_struct *task)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    if (tgid == config.sensor_tgid)
        return false;
    if (config.scope != SENSOR_SCOPE_ALL) {
        u32 mnt_ns = mount_ns_of(task);
        if (config.scope == SENSOR_SCOPE_HOST) {
            if (mnt_ns != config.host_mnt_ns)
                return false;
        } else {
            if (mnt_ns == config.host_mnt_ns)
                return false;
            if (config.scope == SENSOR_SCOPE_NEW_CONTAINERS && bpf_map_lookup_elem(&old_mnt_ns, &mnt_ns))
                return false;
        }
    }
    u32 filters = config.filters;
    if (!filters)
        return true;
    if ((filters & SENSOR_FILTER_PID) && !bpf_map_lookup_elem(&pid_filter, &tgid))
        return false;
    if (filters & SENSOR_FILTER_UID) {
        u32 uid = (u32)bpf_get_current_uid_gid();
        if (!bpf_map_lookup_elem(&uid_filter, &uid))
            return false;
    }
    if (filters & SENSOR_FILTER_COMM) {
        struct comm_key key = {};
        bpf_get_current_comm(&key.comm, sizeof(key.comm));
        if (!bpf_map_lookup_elem(&comm_filter, &key))
            return false;
    }
    if (filters & SENSOR_FILTER_CGROUP) {
        u64 cgroup_id = cgroup_id_of(task);
        if (!bpf_map_lookup_elem(&cgroup_filter, &cgroup_id))
            return false;
    }
    return true;
}

// ---------------------------------------------------------------- records

struct record {
    struct scratch *scratch;
    u32 offset;  // bytes written so far, header included
    u8 argc;
};

static __always_inline bool record_begin(struct record *r, struct task_struct *task, u32 event_id, s64 ret)
{
    u32 zero = 0;
    r->scratch = bpf_map_lookup_elem(&scratch_map, &zero);
    if (!r->scratch)
        return false;
    struct sensor_event_header *h = (void *)r->scratch->record;
    u64 pid_tgid = bpf_get_current_pid_tgid();
    struct task_struct *parent = task->real_parent;
    struct task_struct *leader = task->group_leader;

    h->timestamp = bpf_ktime_get_boot_ns();
    h->cgroup_id = cgroup_id_of(task);
    h->return_value = ret;
    h->event_id = event_id;
    h->host_pid = pid_tgid >> 32;
    h->host_tid = (u32)pid_tgid;
    h->host_ppid = parent->tgid;
    h->tid = ns_tid_of(task);
    h->pid = ns_tid_of(leader);
    h->ppid = ns_ppid_of(task, parent->group_leader);
    h->uid = (u32)bpf_get_current_uid_gid();
    h->mnt_ns = mount_ns_of(task);
    h->pid_ns = pid_ns_of(task);
    h->argc = 0;
    h->cpu = (u8)bpf_get_smp_processor_id();
    h->reserved = 0;
    bpf_get_current_comm(&h->comm, sizeof(h->comm));
    bpf_probe_read_kernel_str(&h->uts_name, sizeof(h->uts_name), task->nsproxy->uts_ns->name.nodename);
    r->offset = sizeof(struct sensor_event_header);
    r->argc = 0;
    return true;
}

/// Starts an argument; returns where its bytes go, or NULL when the record is full.
static __always_inline struct sensor_arg_header *arg_begin(struct record *r, u8 index, u8 kind)
{
    if (r->offset > RECORD_MAX - 16)
        return NULL;
    struct sensor_arg_header *a = (void *)&r->scratch->record[r->offset & OFFSET_MASK];
    a->index = index;
    a->kind = kind;
    a->length = 0;
    return a;
}

static __always_inline void arg_end(struct record *r, struct sensor_arg_header *a, u32 length)
{
    a->length = length;
    r->offset += sizeof(*a) + length;
    r->argc++;
}

static __always_inline void put_u64(struct record *r, u8 index, u8 kind, u64 value)
{
    struct sensor_arg_header *a = arg_begin(r, index, kind);
    if (!a)
        return;
    *(u64 *)((void *)a + sizeof(*a)) = value;
    arg_end(r, a, 8);
}

static __always_inline void put_user_str(struct record *r, u8 index, const char *ptr)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_STR);
    if (!a)
        return;
    long n = 0;
    if (ptr)
        n = bpf_probe_read_user_str((void *)a + sizeof(*a), STR_MAX, ptr);
    arg_end(r, a, n > 0 ? n : 0);
}

static __always_inline void put_kernel_str(struct record *r, u8 index, const char *ptr)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_STR);
    if (!a)
        return;
    long n = 0;
    if (ptr)
        n = bpf_probe_read_kernel_str((void *)a + sizeof(*a), STR_MAX, ptr);
    arg_end(r, a, n > 0 ? n : 0);
}

static __always_inline void put_user_sockaddr(struct record *r, u8 index, const void *ptr, u64 length)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_SOCKADDR);
    if (!a)
        return;
    u32 n = length > SOCKADDR_MAX ? SOCKADDR_MAX : (u32)length;
    if (!ptr || bpf_probe_read_user((void *)a + sizeof(*a), n & (SOCKADDR_MAX * 2 - 1), ptr) < 0)
        n = 0;
    arg_end(r, a, n);
}

/// Appends the path that `pos` points at in the scratch path buffer (see `resolve_path`).
static __always_inline void put_resolved_path(struct record *r, u8 index, u32 pos)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_STR);
    if (!a)
        return;
    u32 n = PATH_SIZE - (pos & PATH_MASK);  // includes the NUL at PATH_SIZE - 1
    if (n > STR_MAX)
        n = STR_MAX;
    bpf_probe_read_kernel((void *)a + sizeof(*a), n & (STR_MAX * 2 - 1), &r->scratch->path[pos & PATH_MASK]);
    arg_end(r, a, n);
}

static __always_inline void submit(struct record *r)
{
    struct sensor_event_header *h = (void *)r->scratch->record;
    u32 size = r->offset;
    h->size = size;
    h->argc = r->argc;
    u32 zero = 0;
    struct sensor_stats *s = bpf_map_lookup_elem(&stats, &zero);
    if (size > SCRATCH_SIZE - 64 || size == 0)
        return;
    if (bpf_ringbuf_output(&events, r->scratch->record, size, 0) == 0) {
        if (s)
            s->submitted++;
    } else if (s) {
        s->lost++;
    }
}

// ---------------------------------------------------------------- paths

struct path_walk {
    struct dentry *dentry;
    struct vfsmount *vfsmnt;
    struct mount *mnt;
    struct mount *mnt_parent;
    u32 pos;
};

/// One step up the tree for `resolve_path`: a name component, or a jump from a mount's
/// root to where it is mounted. Returns 1 to stop. Run by bpf_loop, so the verifier
/// checks it once instead of once per unrolled iteration and call site.
static long path_walk_step(u32 index, void *data)
{
    struct path_walk *w = data;
    u32 zero = 0;
    struct scratch *s = bpf_map_lookup_elem(&scratch_map, &zero);
    if (!s)
        return 1;
    // Plain copies first: BPF_CORE_READ on `w->field` would relocate path_walk itself.
    struct dentry *dentry = w->dentry;
    struct vfsmount *vfsmnt = w->vfsmnt;
    struct mount *mnt = w->mnt;
    struct mount *mnt_parent = w->mnt_parent;
    struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);
    struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
    if (dentry == mnt_root || dentry == parent) {
        if (dentry != mnt_root || mnt == mnt_parent)
            return 1;  // the namespace root, or a detached tree
        w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
        w->mnt = mnt_parent;
        w->mnt_parent = BPF_CORE_READ(mnt_parent, mnt_parent);
        w->vfsmnt = (void *)mnt_parent + bpf_core_field_offset(struct mount, mnt);
        return 0;
    }
    u32 len = BPF_CORE_READ(dentry, d_name.len) & NAME_MAX_;
    const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
    u32 pos = w->pos;
    if (pos < len + 1)
        return 1;
    pos -= len;
    bpf_probe_read_kernel(&s->path[pos & PATH_MASK], len, name);
    pos -= 1;
    s->path[pos & PATH_MASK] = '/';
    w->pos = pos;
    w->dentry = parent;
    return 0;
}

/// Writes the absolute path of `dentry` on `vfsmnt` backwards into the scratch path
/// buffer, crossing mount points up to the root of the task's mount namespace
/// (so container paths are shown as the container sees them). Returns the start.
static __always_inline u32 resolve_path(struct scratch *s, struct dentry *dentry, struct vfsmount *vfsmnt)
{
    struct mount *mnt = (void *)vfsmnt - bpf_core_field_offset(struct mount, mnt);
    struct path_walk walk = {
        .dentry = dentry,
        .vfsmnt = vfsmnt,
        .mnt = mnt,
        .mnt_parent = BPF_CORE_READ(mnt, mnt_parent),
        .pos = PATH_SIZE - 1,
    };
    s->path[PATH_SIZE - 1] = 0;
    bpf_loop(PATH_DEPTH * 2, path_walk_step, &walk, 0);
    u32 pos = walk.pos;
    if (pos == PATH_SIZE - 1) {
        pos -= 1;
        s->path[pos] = '/';
    }
    return pos;
}

static __always_inline struct file *file_of_fd(struct task_struct *task, u32 fd)
{
    struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
    if (fd >= BPF_CORE_READ(fdt, max_fds))
        return NULL;
    struct file **fds = BPF_CORE_READ(fdt, fd);
    struct file *file = NULL;
    bpf_core_read(&file, sizeof(file), &fds[fd]);
    return file;
}

// ---------------------------------------------------------------- derived security events

/// security_file_open from a successful open: the file the new fd refers to.
static __always_inline void emit_file_open(struct task_struct *task, u32 fd)
{
    struct file *file = file_of_fd(task, fd);
    if (!file)
        return;
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SECURITY_FILE_OPEN, 0))
        return;
    u32 pos = resolve_path(r.scratch, BPF_CORE_READ(file, f_path.dentry), BPF_CORE_READ(file, f_path.mnt));
    put_resolved_path(&r, 0, pos);
    put_u64(&r, 1, SENSOR_ARG_S32, BPF_CORE_READ(file, f_flags));
    put_u64(&r, 2, SENSOR_ARG_U32, BPF_CORE_READ(file, f_inode, i_sb, s_dev));
    put_u64(&r, 3, SENSOR_ARG_U64, BPF_CORE_READ(file, f_inode, i_ino));
    submit(&r);
}

/// security_inode_unlink from a successful unlink: an absolute path, joined in the
/// kernel from the directory (dirfd or cwd) and the name the caller passed.
static __always_inline void emit_inode_unlink(struct task_struct *task, int dirfd, const char *name)
{
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SECURITY_INODE_UNLINK, 0))
        return;
    char first = 0;
    bpf_probe_read_user(&first, 1, name);
    if (first == '/') {
        put_user_str(&r, 0, name);
        submit(&r);
        return;
    }
    struct path *dir;
    struct file *file = NULL;
    if (dirfd == AT_FDCWD_) {
        struct fs_struct *fs = BPF_CORE_READ(task, fs);
        dir = __builtin_preserve_access_index(&fs->pwd);
    } else {
        file = file_of_fd(task, dirfd);
        if (!file)
            return;
        dir = __builtin_preserve_access_index(&file->f_path);
    }
    u32 pos = resolve_path(r.scratch, BPF_CORE_READ(dir, dentry), BPF_CORE_READ(dir, mnt));
    struct sensor_arg_header *a = arg_begin(&r, 0, SENSOR_ARG_STR);
    if (!a)
        return;
    u32 dir_len = (PATH_SIZE - 1 - (pos & PATH_MASK)) & (STR_MAX - 1);  // without the NUL
    u8 *out = (void *)a + sizeof(*a);
    bpf_probe_read_kernel(out, dir_len, &r.scratch->path[pos & PATH_MASK]);
    if (dir_len > 1) {
        out[dir_len & (STR_MAX - 1)] = '/';
        dir_len += 1;
    }
    long n = bpf_probe_read_user_str(out + (dir_len & (STR_MAX - 1)), STR_MAX, name);
    arg_end(&r, a, (dir_len & (STR_MAX - 1)) + (n > 0 ? n : 1));
    submit(&r);
}

/// The local address of a socket fd, written as a struct sockaddr_in/in6 would be.
static __always_inline void put_socket_local_addr(struct record *r, u8 index, struct task_struct *task, u32 fd)
{
    struct sensor_arg_header *a = arg_begin(r, index, SENSOR_ARG_SOCKADDR);
    if (!a)
        return;
    u8 *out = (void *)a + sizeof(*a);
    struct file *file = file_of_fd(task, fd);
    struct socket *sock = file ? BPF_CORE_READ(file, private_data) : NULL;
    struct sock *sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
    u16 family = sk ? BPF_CORE_READ(sk, __sk_common.skc_family) : 0;
    u16 port = sk ? BPF_CORE_READ(sk, __sk_common.skc_num) : 0;
    u16 port_be = (port >> 8) | (port << 8);
    u32 n = 2;
    *(u16 *)out = family;
    if (family == AF_INET_) {
        *(u16 *)(out + 2) = port_be;
        *(u32 *)(out + 4) = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
        n = 16;
    } else if (family == AF_INET6_) {
        *(u16 *)(out + 2) = port_be;
        *(u32 *)(out + 4) = 0;
        BPF_CORE_READ_INTO(out + 8, sk, __sk_common.skc_v6_rcv_saddr);
        *(u32 *)(out + 24) = 0;
        n = 28;
    }
    arg_end(r, a, n);
}

static __always_inline void emit_socket_event(struct task_struct *task, u32 event_id, const u64 *args, s64 ret)
{
    struct record r;
    if (!record_begin(&r, task, event_id, 0))
        return;
    switch (event_id) {
    case SENSOR_EVENT_SECURITY_SOCKET_CREATE:
        put_u64(&r, 0, SENSOR_ARG_S32, (s32)args[0]);
        put_u64(&r, 1, SENSOR_ARG_S32, (s32)args[1]);
        put_u64(&r, 2, SENSOR_ARG_S32, (s32)args[2]);
        put_u64(&r, 3, SENSOR_ARG_S32, 0);
        break;
    case SENSOR_EVENT_SECURITY_SOCKET_CONNECT:
    case SENSOR_EVENT_SECURITY_SOCKET_BIND:
        put_u64(&r, 0, SENSOR_ARG_S32, (s32)args[0]);
        put_user_sockaddr(&r, 1, (const void *)args[1], (u32)args[2]);
        break;
    case SENSOR_EVENT_SECURITY_SOCKET_LISTEN:
        put_u64(&r, 0, SENSOR_ARG_S32, (s32)args[0]);
        put_socket_local_addr(&r, 1, task, (u32)args[0]);
        put_u64(&r, 2, SENSOR_ARG_S32, (s32)args[1]);
        break;
    case SENSOR_EVENT_SECURITY_SOCKET_ACCEPT:
        put_u64(&r, 0, SENSOR_ARG_S32, (s32)args[0]);
        put_socket_local_addr(&r, 1, task, (u32)args[0]);
        break;
    }
    submit(&r);
}

static __always_inline void emit_sb_mount(struct task_struct *task, const u64 *args)
{
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SECURITY_SB_MOUNT, 0))
        return;
    put_user_str(&r, 0, (const char *)args[0]);
    put_user_str(&r, 1, (const char *)args[1]);
    put_user_str(&r, 2, (const char *)args[2]);
    put_u64(&r, 3, SENSOR_ARG_U64, args[3]);
    submit(&r);
}

#define WANTS(bit) (config.events & (bit))
#define ERR_BADF -9
#define ERR_FAULT -14
#define ERR_NOTSOCK -88

static __always_inline void derive_security_events(struct task_struct *task, u32 nr, const u64 *args, s64 ret)
{
    switch (nr) {
    case NR_open:
    case NR_openat:
    case NR_openat2:
    case NR_creat:
        if (ret >= 0 && WANTS(SENSOR_WANT_FILE_OPEN))
            emit_file_open(task, (u32)ret);
        break;
    case NR_unlink:
        if (ret == 0 && WANTS(SENSOR_WANT_INODE_UNLINK))
            emit_inode_unlink(task, AT_FDCWD_, (const char *)args[0]);
        break;
    case NR_unlinkat:
        if (ret == 0 && WANTS(SENSOR_WANT_INODE_UNLINK) && !(args[2] & AT_REMOVEDIR_))
            emit_inode_unlink(task, (s32)args[0], (const char *)args[1]);
        break;
    case NR_socket:
        if (ret >= 0 && WANTS(SENSOR_WANT_SOCKET_CREATE))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_CREATE, args, ret);
        break;
    case NR_connect:
        // The LSM hook runs before the protocol's connect: refused or pending connects count.
        if (ret != ERR_BADF && ret != ERR_NOTSOCK && ret != ERR_FAULT && WANTS(SENSOR_WANT_SOCKET_CONNECT))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_CONNECT, args, ret);
        break;
    case NR_bind:
        if (ret != ERR_BADF && ret != ERR_NOTSOCK && ret != ERR_FAULT && WANTS(SENSOR_WANT_SOCKET_BIND))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_BIND, args, ret);
        break;
    case NR_listen:
        if (ret == 0 && WANTS(SENSOR_WANT_SOCKET_LISTEN))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_LISTEN, args, ret);
        break;
    case NR_accept:
    case NR_accept4:
        if (ret >= 0 && WANTS(SENSOR_WANT_SOCKET_ACCEPT))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_ACCEPT, args, ret);
        break;
    case NR_mount:
        if (ret != ERR_FAULT && WANTS(SENSOR_WANT_SB_MOUNT))
            emit_sb_mount(task, args);
        break;
    }
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
    if (nr == NR_execve) {
        put_user_str(&r, 0, (const char *)args[0]);
        put_user_argv(&r, 1, (const char *const *)args[1]);
    } else if (nr == NR_execveat) {
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
    struct record r;

    if (WANTS(SENSOR_WANT_BPRM_CHECK) && record_begin(&r, task, SENSOR_EVENT_SECURITY_BPRM_CHECK, 0)) {
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
