// Included once by sensor.bpf.c: what every event says about its task (scope check,
// namespace pids, cgroup) and how a record is built in the per-CPU scratch buffer.
#ifndef CADUCEUS_TASK_CONTEXT_BPF_H
#define CADUCEUS_TASK_CONTEXT_BPF_H

// ---------------------------------------------------------------- task facts

// Every program (tp_btf, lsm/, cgroup/) gets `task` as a BTF pointer (a tp_btf argument or
// bpf_get_current_task_btf): plain field loads are checked by the verifier and cost a load
// each, not a helper call. Only a variable array index (pid numbers, cgroup subsystems)
// goes through bpf_probe_read_kernel.

static __always_inline u32 mount_ns_of(struct task_struct *task)
{
    return task->nsproxy->mnt_ns->ns.inum;
}

/// The css of subsystem `index` (a constant the verifier knows: `config` is read-only), loaded
/// directly: a variable index would need bpf_probe_read_kernel, and this runs for every record.
#define CSS_CASE(n) case n: return cgroups->subsys[n];
static __always_inline struct cgroup_subsys_state *css_of(struct css_set *cgroups, u32 index)
{
    switch (index) {
    CSS_CASE(0) CSS_CASE(1) CSS_CASE(2) CSS_CASE(3) CSS_CASE(4) CSS_CASE(5) CSS_CASE(6) CSS_CASE(7)
    CSS_CASE(8) CSS_CASE(9) CSS_CASE(10) CSS_CASE(11) CSS_CASE(12) CSS_CASE(13) CSS_CASE(14) CSS_CASE(15)
    }
    return NULL;
}

static __always_inline u64 cgroup_id_of(struct task_struct *task)
{
    if (!config.cgroup_v1)
        return bpf_get_current_cgroup_id();
    // cgroup v1: the id of the task's cgroup in the hierarchy of one subsystem. Plain loads
    // through the task's BTF pointer (a NULL on the way reads as 0): four bpf_probe_read_kernel
    // calls here were, twice a record, most of the helper time `perf` found in on_sys_exit.
    struct cgroup_subsys_state *css = css_of(task->cgroups, config.cgroup_v1_subsys & 15);
    if (!css)
        return 0;
    struct cgroup *cgroup = css->cgroup;
    if (!cgroup)
        return 0;
    struct kernfs_node *kn = cgroup->kn;
    return kn ? kn->id : 0;
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

/// The number `pid` has in the task's own pid namespace (`task_pid` is the task's pid): 0 when it
/// has none there (it was made outside, as a container's parent or session is), as pid_vnr says.
static __always_inline u32 ns_nr_of(struct pid *pid, struct pid *task_pid)
{
    unsigned int level = task_pid->level;
    if (!pid || pid->level < level || level > 31)
        return 0;
    struct upid own = upid_at(task_pid, level);
    struct upid other = upid_at(pid, level);
    return other.ns == own.ns ? other.nr : 0;
}

/// The parent's id as the task sees it: 0 when the parent is outside the task's pid
/// namespace (a container's init), as getppid() would say.
static __always_inline u32 ns_ppid_of(struct task_struct *task, struct task_struct *parent_leader)
{
    return ns_nr_of(parent_leader->thread_pid, task->thread_pid);
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
    // `task` is current (bpf_get_current_task_btf): its fields are plain loads, cheaper than the helpers.
    u32 tgid = task->tgid;
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
        if (config.filter_cgroup_count) {
            // One container's few cgroups, known at load: compared with constants, where a hash
            // lookup cost every syscall of every process on the machine (the load generator's, a
            // compiler's) some 30 ns before it could be dropped.
            bool found = false;
            for (u32 i = 0; i < SENSOR_MAX_FILTER_CGROUPS; i++)
                if (i < config.filter_cgroup_count && config.filter_cgroups[i] == cgroup_id)
                    found = true;
            if (!found)
                return false;
        } else if (!bpf_map_lookup_elem(&cgroup_filter, &cgroup_id)) {
            return false;
        }
    }
    return true;
}

// ---------------------------------------------------------------- records

struct record {
    struct scratch *scratch;
    u32 offset;  // bytes written so far, header included
    u8 argc;
};

/// A task's pid facts as its own pid namespace sees them, kept with the task (task storage) so
/// a record costs no `bpf_probe_read_kernel` for them: `perf record -a -g` of a capture put
/// those reads (five per record) at a quarter of the program's time. Valid while the task's
/// host tid is `host_tid` (a thread that execs takes over its leader's pid: de_thread) and,
/// for `ppid`, while its parent is `parent_tgid` (a reparented task gets a new parent). A task's
/// pid namespace never changes (setns and unshare change only its children's).
struct task_ids {
    u32 host_tid;     // 0: not filled yet
    u32 tid;
    u32 pid;
    u32 pid_ns;
    u32 parent_tgid;
    u32 ppid;
};

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct task_ids);
} task_ids_map SEC(".maps");

/// The task's ids from its storage, filled or refreshed when stale; read directly when the
/// kernel gives no storage (recursion, memory).
static __always_inline void task_ids_of(struct task_struct *task, u32 host_tid, struct task_struct *parent, struct task_ids *out)
{
    struct task_ids *ids = bpf_task_storage_get(&task_ids_map, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
    u32 parent_tgid = parent->tgid;
    if (ids && ids->host_tid == host_tid && host_tid != 0) {
        if (ids->parent_tgid != parent_tgid) {
            ids->ppid = ns_ppid_of(task, parent->group_leader);
            ids->parent_tgid = parent_tgid;
        }
        *out = *ids;
        return;
    }
    out->host_tid = host_tid;
    out->tid = ns_tid_of(task);
    out->pid = ns_tid_of(task->group_leader);
    out->pid_ns = pid_ns_of(task);
    out->parent_tgid = parent_tgid;
    out->ppid = ns_ppid_of(task, parent->group_leader);
    if (ids)
        *ids = *out;
}

static __always_inline bool record_begin(struct record *r, struct task_struct *task, u32 event_id, s64 ret)
{
    u32 zero = 0;
    r->scratch = bpf_map_lookup_elem(&scratch_map, &zero);
    if (!r->scratch)
        return false;
    struct sensor_event_header *h = (void *)r->scratch->record;
    // `task` is current: plain loads instead of bpf_get_current_pid_tgid and
    // bpf_get_current_uid_gid (whose from_kuid/from_kgid in init_user_ns map every id to itself).
    u64 pid_tgid = (u64)(u32)task->tgid << 32 | (u32)task->pid;
    struct task_struct *parent = task->real_parent;
    struct task_ids ids;
    task_ids_of(task, (u32)pid_tgid, parent, &ids);

    h->timestamp = bpf_ktime_get_boot_ns();
    h->cgroup_id = cgroup_id_of(task);
    h->return_value = ret;
    h->event_id = event_id;
    h->host_pid = pid_tgid >> 32;
    h->host_tid = (u32)pid_tgid;
    h->host_ppid = ids.parent_tgid;
    h->tid = ids.tid;
    h->pid = ids.pid;
    h->ppid = ids.ppid;
    h->uid = task->cred->uid.val;
    h->mnt_ns = mount_ns_of(task);
    h->pid_ns = ids.pid_ns;
    h->argc = 0;
    h->cpu = (u8)bpf_get_smp_processor_id();
    h->flags = 0;
    if (config.kill_patterns || config.exec_allow) {
        // The process the kernel killed (on_sys_enter_enforce, sched_process_exec): its
        // remaining records say so, and which rule's pattern (or the exec allow list) did it.
        u32 tgid = pid_tgid >> 32;
        u32 *slot = bpf_map_lookup_elem(&killed, &tgid);
        if (slot)
            h->flags = SENSOR_EVENT_KILLED | ((*slot & 0xff) << 8);
    }
    if (config.cgroup_deny && ret == -1) {
        // EPERM from a call a cgroup program refused (cgroup_verdict): the syscall's record, and
        // the security event derived from it, say so and which rule's pattern.
        struct denial *d = bpf_map_lookup_elem(&denied, &pid_tgid);
        if (d) {
            u32 nr = d->nr;
            bool send = nr == __NR_sendto || nr == __NR_sendmsg;
            if (event_id == nr || (send && (event_id == __NR_sendto || event_id == __NR_sendmsg))
                || (nr == __NR_connect && event_id == SENSOR_EVENT_SECURITY_SOCKET_CONNECT)
                || (nr == __NR_bind && event_id == SENSOR_EVENT_SECURITY_SOCKET_BIND))
                h->flags |= SENSOR_EVENT_DENIED | ((d->slot & 0xff) << 16);
        }
    }
    // comm by two plain loads, as bpf_get_current_comm would copy it: the kernel keeps it
    // NUL-padded (strscpy_pad), and byte 15 is forced to NUL against a rename racing the loads.
    *(u64 *)&h->comm[0] = *(const u64 *)&task->comm[0];
    *(u64 *)&h->comm[8] = *(const u64 *)&task->comm[8];
    h->comm[15] = 0;
    // The host name's first 15 bytes by two plain loads through BTF pointers (a NULL on the way
    // reads as 0), NUL-terminated as bpf_probe_read_kernel_str would leave them: the helper and
    // its string copy were a tenth of the program's time on the storm.
    const char *nodename = task->nsproxy->uts_ns->name.nodename;
    *(u64 *)&h->uts_name[0] = *(const u64 *)nodename;
    *(u64 *)&h->uts_name[8] = *(const u64 *)(nodename + 8);
    h->uts_name[15] = 0;
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
    // A wakeup is an irq_work (a self-IPI: on a VM an APIC write that exits to the hypervisor)
    // and a context switch, paid in the traced task: when the reader polls on a timer anyway,
    // wake it once, from the record that makes the waiting bytes cross `wakeup_bytes`. Forcing
    // a wakeup from every record past the threshold (as this did) sent an IPI per record until
    // the reader ran: `perf record -a -g` put native_write_msr under bpf_ringbuf_output.
    // Forced: the default wakes only a reader that had caught up, which one left sleeping never has.
    // What waits is asked once per sixteenth of `wakeup_bytes` a CPU writes, not per record: the query reads
    // the ring's positions, cache lines the other CPU and the reader keep writing (`perf` put it at
    // a tenth of the program's time). A crossing neither CPU's window sees waits for the poll timer.
    u64 flags = 0;
    if (config.wakeup_bytes) {
        flags = BPF_RB_NO_WAKEUP;
        // What this record adds to the waiting bytes: its 8-byte ring header, rounded up to 8.
        u32 added = (size + 8 + 7) & ~7u;
        u32 window = r->scratch->unqueried_bytes + added;
        if (window < config.wakeup_bytes / 16) {
            r->scratch->unqueried_bytes = window;
        } else {
            r->scratch->unqueried_bytes = 0;
            u64 after = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + added;
            if (after >= config.wakeup_bytes && after - window < config.wakeup_bytes)
                flags = BPF_RB_FORCE_WAKEUP;
        }
    }
    if (bpf_ringbuf_output(&events, r->scratch->record, size, flags) == 0) {
        if (s)
            s->submitted++;
    } else if (s) {
        s->lost++;
    }
}

#endif
