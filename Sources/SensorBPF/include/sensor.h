// The contract between the BPF programs (sensor.bpf.c) and the Swift decoder
// (Sources/Sensor). Every struct here has a Swift mirror checked by
// Tests/SensorTests/EventLayoutTests.swift: change both or neither.
#ifndef CADUCEUS_SENSOR_H
#define CADUCEUS_SENSOR_H

#include <linux/types.h>

#define SENSOR_MAX_SYSCALLS 512
#define SENSOR_MAX_ARGS 6
#define SENSOR_TASK_COMM_LEN 16
#define SENSOR_MAX_FILTER_CGROUPS 8

/// How one argument travels in an event record, and how the decoder shows it.
enum sensor_arg_kind {
    SENSOR_ARG_NONE = 0,
    SENSOR_ARG_S32 = 1,      // int: the low 32 bits of the register, sign-extended
    SENSOR_ARG_U32 = 2,      // unsigned int, mode_t, uid_t, ...
    SENSOR_ARG_S64 = 3,      // long, off_t, ...
    SENSOR_ARG_U64 = 4,      // unsigned long, size_t, pointers
    SENSOR_ARG_STR = 5,      // a NUL-terminated user string (paths, names)
    SENSOR_ARG_SOCKADDR = 6, // raw struct sockaddr bytes, decoded in user space
    SENSOR_ARG_STRARR = 7,   // argv-like array: strings, each NUL-terminated
};

/// Per-syscall tracing rule: what the kernel does when syscall `nr` ends.
struct sensor_syscall_rule {
    __u8 flags;                    // SENSOR_RULE_*
    __u8 reserved;
    __u8 kinds[SENSOR_MAX_ARGS];   // enum sensor_arg_kind per argument
};

#define SENSOR_RULE_EMIT 0x01     // emit the syscall's own event
#define SENSOR_RULE_AT_ENTER 0x02 // emit at sys_enter: the call never returns to the caller's image (execve, exit)
#define SENSOR_RULE_DERIVE 0x04   // derive a security_* event from this syscall's result
#define SENSOR_RULE_ENFORCE 0x08  // check the kill patterns at sys_enter (on_sys_enter_enforce)
#define SENSOR_RULE_FAILED_AT_EXIT 0x10 // with AT_ENTER: emit again at sys_exit when the call failed (a refused exec)

/// Which processes the kernel reports; anything else costs no ring buffer traffic.
enum sensor_scope {
    SENSOR_SCOPE_ALL = 0,
    SENSOR_SCOPE_HOST = 1,            // the host's mount namespace only
    SENSOR_SCOPE_CONTAINERS = 2,      // any other mount namespace
    SENSOR_SCOPE_NEW_CONTAINERS = 3,  // containers whose mount namespace is not in `old_mnt_ns`
};

#define SENSOR_FILTER_PID 0x01     // tgid must be in `pid_filter`
#define SENSOR_FILTER_COMM 0x02    // comm must be in `comm_filter`
#define SENSOR_FILTER_UID 0x04     // uid must be in `uid_filter`
#define SENSOR_FILTER_CGROUP 0x08  // cgroup id must be in `cgroup_filter` (one container)

/// Event ids of the events that are not syscalls (Tracee's numbering).
enum sensor_event_id {
    SENSOR_EVENT_SCHED_PROCESS_FORK = 1002,
    SENSOR_EVENT_SCHED_PROCESS_EXEC = 1003,
    SENSOR_EVENT_SCHED_PROCESS_EXIT = 1004,
    SENSOR_EVENT_CAP_CAPABLE = 1006,
    SENSOR_EVENT_SECURITY_BPRM_CHECK = 1014,
    SENSOR_EVENT_SECURITY_FILE_OPEN = 1015,
    SENSOR_EVENT_SECURITY_INODE_UNLINK = 1016,
    SENSOR_EVENT_SECURITY_SOCKET_CREATE = 1017,
    SENSOR_EVENT_SECURITY_SOCKET_LISTEN = 1018,
    SENSOR_EVENT_SECURITY_SOCKET_CONNECT = 1019,
    SENSOR_EVENT_SECURITY_SOCKET_ACCEPT = 1020,
    SENSOR_EVENT_SECURITY_SOCKET_BIND = 1021,
    SENSOR_EVENT_SECURITY_SB_MOUNT = 1022,
};

/// Bits of `sensor_config.events`: the non-syscall events wanted.
#define SENSOR_WANT_FORK (1u << 0)
#define SENSOR_WANT_EXEC (1u << 1)
#define SENSOR_WANT_EXIT (1u << 2)
#define SENSOR_WANT_CAP_CAPABLE (1u << 3)
#define SENSOR_WANT_BPRM_CHECK (1u << 4)
#define SENSOR_WANT_FILE_OPEN (1u << 5)
#define SENSOR_WANT_INODE_UNLINK (1u << 6)
#define SENSOR_WANT_SOCKET_CREATE (1u << 7)
#define SENSOR_WANT_SOCKET_LISTEN (1u << 8)
#define SENSOR_WANT_SOCKET_CONNECT (1u << 9)
#define SENSOR_WANT_SOCKET_ACCEPT (1u << 10)
#define SENSOR_WANT_SOCKET_BIND (1u << 11)
#define SENSOR_WANT_SB_MOUNT (1u << 12)

/// Settings written by user space before load (a `const volatile` global in
/// its own `.rodata.config` section, so the verifier sees them as constants).
struct sensor_config {
    __u32 scope;            // enum sensor_scope
    __u32 filters;          // SENSOR_FILTER_*
    __u32 events;           // SENSOR_WANT_*
    __u32 host_mnt_ns;      // inode number of the host's mount namespace
    __u32 sensor_tgid;      // the sensor itself is never traced
    __u32 cgroup_v1;        // 1: read the cgroup id from a v1 hierarchy
    __u32 cgroup_v1_subsys; // subsystem index whose hierarchy names containers
    __u32 lsm;              // 1: security_* events come from the lsm/ programs, not from syscalls
    __u32 wakeup_bytes;     // wake the reader only once this much waits (0: every record)
    __u32 kill_patterns;    // entries of `kill_patterns` in use (0: enforcement off, nothing is killed)
    __u32 kill_cgroups;     // 1: kill only in the cgroups of `kill_cgroup` (--enforce-container)
    __u32 exec_allow;       // 1: in the cgroups of `exec_allow_cgroup`, kill an exec of a path not in `exec_allow`
    __u32 cgroup_deny;      // 1: cgroup/ programs are loaded: they refuse the socket calls of patterns with SENSOR_KILL_CGROUP
    __u32 filter_cgroup_count; // SENSOR_FILTER_CGROUP with at most SENSOR_MAX_FILTER_CGROUPS cgroups: compared here, not looked up in `cgroup_filter`
    __u64 filter_cgroups[SENSOR_MAX_FILTER_CGROUPS];
    struct sensor_syscall_rule syscalls[SENSOR_MAX_SYSCALLS];
};

/// The fixed part of every record in the ring buffer; arguments follow.
struct sensor_event_header {
    __u64 timestamp;        // bpf_ktime_get_boot_ns(); user space adds the boot time
    __u64 cgroup_id;
    __s64 return_value;
    __u32 event_id;         // syscall number or enum sensor_event_id
    __u32 host_pid;
    __u32 host_tid;
    __u32 host_ppid;
    __u32 pid;              // in the task's pid namespace
    __u32 tid;
    __u32 ppid;
    __u32 uid;
    __u32 mnt_ns;
    __u32 pid_ns;
    __u16 size;             // header plus arguments, in bytes
    __u8 argc;
    __u8 cpu;
    __u32 flags;            // SENSOR_EVENT_KILLED | rule slot << 8 when the kernel killed the process;
                            // SENSOR_EVENT_DENIED | rule slot << 16 when a cgroup program refused this call;
                            // SENSOR_EVENT_EXIT on a failed exec's record taken at its exit
    char comm[SENSOR_TASK_COMM_LEN];
    char uts_name[SENSOR_TASK_COMM_LEN];
};

/// `sensor_event_header.flags`: the kernel sent SIGKILL to this process at a kill pattern;
/// bits 8-15 are the pattern's `rule` slot.
#define SENSOR_EVENT_KILLED 0x01
/// `sensor_event_header.flags`: a cgroup program (cgroup/connect4, ...) refused this very call
/// with EPERM before it ran; bits 16-23 are the pattern's `rule` slot.
#define SENSOR_EVENT_DENIED 0x02
/// `sensor_event_header.flags`: the record of a call reported at entry (execve, execveat), taken
/// again at its exit because it failed; `return_value` is the error (-errno).
#define SENSOR_EVENT_EXIT 0x04

/// Kill patterns: what the kernel matches to enforce `action: kill` rules itself.
#define SENSOR_MAX_KILL_PATTERNS 16
#define SENSOR_KILL_TEXT_LEN 128

enum sensor_kill_kind {
    SENSOR_KILL_SYSCALL = 0,    // any call of syscall `nr` (module load, ptrace, mount)
    SENSOR_KILL_OPEN_PATH = 1,  // open/openat/openat2/creat `nr` of a path as the caller passed it
    SENSOR_KILL_EXEC_PATH = 2,  // exec of a file, by its resolved path (sched_process_exec)
    SENSOR_KILL_EXEC_NAME = 3,  // exec of a file, by the new comm (proc.name)
    SENSOR_KILL_CONNECT_ADDR = 4, // connect, bind, sendto or sendmsg (`nr`) to an address: `text` is its 4 (IPv4) or 16 (IPv6) bytes
};

/// The exec allow list of a learned profile (`detect --profile` enforcing PROFILE-EXEC): keys
/// are resolved paths, NUL-padded to SENSOR_EXEC_ALLOW_PATH_LEN bytes. A process killed for an
/// exec outside it reports this slot in sensor_event_header.flags.
#define SENSOR_EXEC_ALLOW_PATH_LEN 256
#define SENSOR_MAX_EXEC_ALLOW 1024
#define SENSOR_KILL_SLOT_EXEC_ALLOW 255

#define SENSOR_KILL_PREFIX 0x01      // `text` is a prefix, not the whole string
#define SENSOR_KILL_CONTAINERS 0x02  // only outside the host's mount namespace
#define SENSOR_KILL_CGROUP 0x04      // refused by the cgroup/ programs (IPv4 and IPv6 calls): never killed for at
                                     // sys_enter, except an any-call pattern for a call of another socket family

struct sensor_kill_pattern {
    __u32 nr;               // syscall number (SYSCALL and OPEN_PATH kinds)
    __u8 kind;              // enum sensor_kill_kind
    __u8 flags;             // SENSOR_KILL_*
    __u16 length;           // bytes of `text` compared (no NUL)
    __u32 rule;             // slot reported in sensor_event_header.flags (bits 8-15)
    char text[SENSOR_KILL_TEXT_LEN];
};

/// Precedes each argument's bytes: integers take 8, strings their length with the NUL.
struct sensor_arg_header {
    __u8 index;             // position in the event's argument list
    __u8 kind;              // enum sensor_arg_kind
    __u16 length;           // bytes that follow
};

/// Counters per CPU, read by user space at the end and in summaries.
struct sensor_stats {
    __u64 submitted;        // records written to the ring buffer
    __u64 lost;             // records the ring buffer had no room for
};

#endif
