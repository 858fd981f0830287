// Included once by sensor.bpf.c: the exec syscalls' own arguments (at entry, and at exit when the
// call failed), and what sched_process_exec reports about the new image beyond its path: the
// credentials exec gave it, the login uid, session and process group, the executable's times and
// the working directory (what Falco's execve exit event carries).
#ifndef CADUCEUS_EXEC_EVENTS_BPF_H
#define CADUCEUS_EXEC_EVENTS_BPF_H

#define PIDTYPE_PGID_ 2
#define PIDTYPE_SID_ 3
#define AUDIT_UID_UNSET_ 4294967295u
#define NSEC_PER_SEC_ 1000000000ull
#define CTIME_NSEC_MASK_ 0x7fffffffu

// ---------------------------------------------------------------- the exec syscalls

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

/// execve's or execveat's arguments as the caller passed them. At exit they are read again: a
/// failed call returned to its caller, whose memory still holds them.
static __always_inline void put_exec_syscall_args(struct record *r, u32 nr, const u64 *args)
{
    if (nr == __NR_execve) {
        put_user_str(r, 0, (const char *)args[0]);
        put_user_argv(r, 1, (const char *const *)args[1]);
    } else {
        put_u64(r, 0, SENSOR_ARG_S32, (u64)(s64)(s32)args[0]);
        put_user_str(r, 1, (const char *)args[1]);
        put_user_argv(r, 2, (const char *const *)args[2]);
        put_u64(r, 3, SENSOR_ARG_S32, (u64)(s64)(s32)args[4]);
    }
}

// ---------------------------------------------------------------- the new image

/// ctime and mtime of `inode` in nanoseconds since the epoch, on whichever layout the running
/// kernel has (kernel_types.h's inode flavours). Each branch but one is removed at load; `inode`
/// is a BTF pointer, so each field is one load, not a helper call.
static __always_inline void inode_times(struct inode *inode, u64 *ctime, u64 *mtime)
{
    if (bpf_core_field_exists(struct inode___split, i_ctime_sec)) {
        struct inode___split *i = (void *)inode;
        // Bit 31 of i_ctime_nsec is the multigrain timestamps' "queried" flag (6.13+), not time.
        *ctime = i->i_ctime_sec * NSEC_PER_SEC_ + (i->i_ctime_nsec & CTIME_NSEC_MASK_);
        *mtime = i->i_mtime_sec * NSEC_PER_SEC_ + i->i_mtime_nsec;
    } else if (bpf_core_field_exists(struct inode___hidden, __i_mtime)) {
        struct inode___hidden *i = (void *)inode;
        *ctime = i->__i_ctime.tv_sec * NSEC_PER_SEC_ + i->__i_ctime.tv_nsec;
        *mtime = i->__i_mtime.tv_sec * NSEC_PER_SEC_ + i->__i_mtime.tv_nsec;
    } else if (bpf_core_field_exists(struct inode___hidden_ctime, __i_ctime)) {
        struct inode___hidden_ctime *i = (void *)inode;
        *ctime = i->__i_ctime.tv_sec * NSEC_PER_SEC_ + i->__i_ctime.tv_nsec;
        *mtime = i->i_mtime.tv_sec * NSEC_PER_SEC_ + i->i_mtime.tv_nsec;
    } else {
        struct inode___timespec *i = (void *)inode;
        *ctime = i->i_ctime.tv_sec * NSEC_PER_SEC_ + i->i_ctime.tv_nsec;
        *mtime = i->i_mtime.tv_sec * NSEC_PER_SEC_ + i->i_mtime.tv_nsec;
    }
}

/// sched_process_exec's arguments from `first` on (EventTable's row names them): gid,
/// cap_permitted, cap_effective, loginuid, sid, pgid, exe_ctime, exe_mtime, cwd. Read at the
/// tracepoint, where exec has committed the new credentials, because user space reading /proc
/// later loses the race with short-lived processes. `task` and `exe` are BTF pointers: about
/// twenty plain loads and one path walk (the working directory's).
static __always_inline void put_exec_context(struct record *r, u8 first, struct task_struct *task, struct inode *exe)
{
    const struct cred *cred = task->cred;
    u64 permitted = 0, effective = 0;
    if (bpf_core_field_exists(cred->cap_permitted.val)) {
        permitted = cred->cap_permitted.val;
        effective = cred->cap_effective.val;
    } else {
        // Before 6.3: two u32, low word first, read as one u64.
        bpf_probe_read_kernel(&permitted, sizeof(permitted), __builtin_preserve_access_index(&cred->cap_permitted));
        bpf_probe_read_kernel(&effective, sizeof(effective), __builtin_preserve_access_index(&cred->cap_effective));
    }
    u32 loginuid = AUDIT_UID_UNSET_;
    if (bpf_core_field_exists(task->loginuid))
        loginuid = task->loginuid.val;
    // Session and process group as numbers in the task's own pid namespace (0 when the leader is
    // outside it), so a container's shell is its own session leader as it sees itself.
    struct pid *own = task->thread_pid;
    struct pid *session = task->signal->pids[PIDTYPE_SID_];
    struct pid *group = task->signal->pids[PIDTYPE_PGID_];
    u64 ctime = 0, mtime = 0;
    inode_times(exe, &ctime, &mtime);

    put_u64(r, first, SENSOR_ARG_U32, cred->egid.val);
    put_u64(r, first + 1, SENSOR_ARG_U64, permitted);
    put_u64(r, first + 2, SENSOR_ARG_U64, effective);
    put_u64(r, first + 3, SENSOR_ARG_U32, loginuid);
    put_u64(r, first + 4, SENSOR_ARG_S32, (u64)(s64)(s32)ns_nr_of(session, own));
    put_u64(r, first + 5, SENSOR_ARG_S32, (u64)(s64)(s32)ns_nr_of(group, own));
    put_u64(r, first + 6, SENSOR_ARG_U64, ctime);
    put_u64(r, first + 7, SENSOR_ARG_U64, mtime);
    // Read, not loaded: resolve_path wants plain values (a BTF pointer here multiplied the verifier's states).
    struct fs_struct *fs = BPF_CORE_READ(task, fs);
    put_resolved_path(r, first + 8, resolve_path(r->scratch, BPF_CORE_READ(fs, pwd.dentry), BPF_CORE_READ(fs, pwd.mnt)));
}

#endif
