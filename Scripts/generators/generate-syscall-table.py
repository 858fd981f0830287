#!/usr/bin/env python3
"""Generate Sources/Sensor/Events/GeneratedSyscalls.swift: one row per x86_64 syscall.

Inputs (read on the machine that runs the script, Python 3 stdlib only):

  * asm/unistd_64.h (default /usr/include/x86_64-linux-gnu/asm/unistd_64.h):
    `#define __NR_<name> <nr>` gives every syscall and its number; numbers >= 512
    (the x32 range) are skipped.
  * The kernel's syscall tracepoint formats, <tracing>/events/syscalls/sys_enter_<name>/format
    (default tracing dir /sys/kernel/tracing; if it is empty, mount it first:
    `mount -t tracefs nodev /sys/kernel/tracing`). The fields after `__syscall_nr` are the
    arguments, in register order, with the kernel's names and C types. A few tracepoints carry
    another name than the syscall (newstat for stat, umount for umount2, ...: TRACEPOINT_ALIASES);
    syscalls without any tracepoint take FALLBACK_ARGS or no arguments.

Tracee's argument names and types replace the kernel's for Tracee's default events
(TRACEE_DEFAULT_ARGS); every other syscall keeps the kernel's names with types normalized to
Tracee's spelling ("const char*", "struct stat*", umode_t -> mode_t, ...). Each row is
classified into event sets by SET_RULES. The output is deterministic: rows sorted by number.

Usage: Scripts/generators/generate-syscall-table.py [--unistd PATH] [--tracing DIR] [--output PATH]
"""

import argparse
import os
import re
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_OUTPUT = os.path.join(ROOT, "Sources", "Sensor", "Events", "GeneratedSyscalls.swift")

# Syscall name (unistd_64.h) -> the name of its sys_enter tracepoint, where they differ.
TRACEPOINT_ALIASES = {
    "stat": "newstat", "fstat": "newfstat", "lstat": "newlstat", "uname": "newuname",
    "umount2": "umount", "sendfile": "sendfile64",
}
# Syscall name (unistd_64.h) -> Tracee's event name, where they differ.
TRACEE_NAMES = {"_sysctl": "sysctl", "afs_syscall": "afs"}

# Argument lists are written "TYPE NAME[:kind], ..."; kind is str (NUL-terminated string),
# sa (struct sockaddr) or argv (string array); without it the kind follows from the type.

# Tracee's (man-page) names and types for its default events, checked against Tracee's event
# definitions. execve/execveat leave out envp (Tracee's default output omits it): the sensor
# must read execveat's `flags` from the fifth register, not the fourth.
TRACEE_DEFAULT_ARGS = {
    "open": "const char* pathname:str, int flags, mode_t mode",
    "close": "int fd",
    "stat": "const char* pathname:str, struct stat* statbuf",
    "fstat": "int fd, struct stat* statbuf",
    "lstat": "const char* pathname:str, struct stat* statbuf",
    "access": "const char* pathname:str, int mode",
    "dup": "int oldfd",
    "dup2": "int oldfd, int newfd",
    "socket": "int domain, int type, int protocol",
    "connect": "int sockfd, struct sockaddr* addr:sa, int addrlen",
    "accept": "int sockfd, struct sockaddr* addr:sa, int* addrlen",
    "bind": "int sockfd, struct sockaddr* addr:sa, int addrlen",
    "listen": "int sockfd, int backlog",
    "getsockname": "int sockfd, struct sockaddr* addr:sa, int* addrlen",
    "clone": "unsigned long flags, void* stack, int* parent_tid, int* child_tid, unsigned long tls",
    "fork": "",
    "vfork": "",
    "execve": "const char* pathname:str, const char*const* argv:argv",
    "kill": "pid_t pid, int sig",
    "getdents": "int fd, struct linux_dirent* dirp, unsigned int count",
    "creat": "const char* pathname:str, mode_t mode",
    "unlink": "const char* pathname:str",
    "symlink": "const char* target:str, const char* linkpath:str",
    "chmod": "const char* pathname:str, mode_t mode",
    "fchmod": "int fd, mode_t mode",
    "chown": "const char* pathname:str, uid_t owner, gid_t group",
    "fchown": "int fd, uid_t owner, gid_t group",
    "lchown": "const char* pathname:str, uid_t owner, gid_t group",
    "ptrace": "long request, pid_t pid, void* addr, void* data",
    "setuid": "uid_t uid",
    "setgid": "gid_t gid",
    "setreuid": "uid_t ruid, uid_t euid",
    "setregid": "gid_t rgid, gid_t egid",
    "setfsuid": "uid_t fsuid",
    "setfsgid": "gid_t fsgid",
    "mknod": "const char* pathname:str, mode_t mode, dev_t dev",
    "prctl": "int option, unsigned long arg2, unsigned long arg3, unsigned long arg4, unsigned long arg5",
    "mount": "const char* source:str, const char* target:str, const char* filesystemtype:str, "
             "unsigned long mountflags, const void* data",
    "umount2": "const char* target:str, int flags",
    "init_module": "void* module_image, unsigned long len, const char* param_values:str",
    "delete_module": "const char* name:str, int flags",
    "getdents64": "unsigned int fd, struct linux_dirent64* dirp, unsigned int count",
    "openat": "int dirfd, const char* pathname:str, int flags, mode_t mode",
    "mknodat": "int dirfd, const char* pathname:str, mode_t mode, dev_t dev",
    "fchownat": "int dirfd, const char* pathname:str, uid_t owner, gid_t group, int flags",
    "unlinkat": "int dirfd, const char* pathname:str, int flags",
    "symlinkat": "const char* target:str, int newdirfd, const char* linkpath:str",
    "fchmodat": "int dirfd, const char* pathname:str, mode_t mode, int flags",
    "faccessat": "int dirfd, const char* pathname:str, int mode, int flags",
    "accept4": "int sockfd, struct sockaddr* addr:sa, int* addrlen, int flags",
    "dup3": "int oldfd, int newfd, int flags",
    "process_vm_readv": "pid_t pid, const struct iovec* local_iov, unsigned long liovcnt, "
                        "const struct iovec* remote_iov, unsigned long riovcnt, unsigned long flags",
    "process_vm_writev": "pid_t pid, const struct iovec* local_iov, unsigned long liovcnt, "
                         "const struct iovec* remote_iov, unsigned long riovcnt, unsigned long flags",
    "finit_module": "int fd, const char* param_values:str, int flags",
    "memfd_create": "const char* name:str, unsigned int flags",
    "bpf": "int cmd, union bpf_attr* attr, unsigned int size",
    "execveat": "int dirfd, const char* pathname:str, const char*const* argv:argv, int flags",
    "pkey_mprotect": "void* addr, size_t len, int prot, int pkey",
    "move_mount": "int from_dfd, const char* from_path:str, int to_dfd, const char* to_path:str, unsigned int flags",
    "clone3": "struct clone_args* cl_args, size_t size",
    # Tracee shows first and last only; the kernel's flags is kept as a third argument.
    "close_range": "unsigned int first, unsigned int last, unsigned int flags",
    "openat2": "int dirfd, const char* pathname:str, struct open_how* how, size_t size",
    "faccessat2": "int fd, const char* path:str, int mode, int flag",
}
# Tracee's argument count minus the tracepoint's, where they differ: execve/execveat leave out
# envp; Tracee shows a `flags` for fchmodat and faccessat that the kernel's do not take (the
# fchmodat2/faccessat2 syscalls do), so that value is whatever the fourth register holds.
COUNT_DIFFERENCES = {"execve": -1, "execveat": -1, "fchmodat": 1, "faccessat": 1}

# Syscalls without a sys_enter tracepoint on some kernels: the kernel's SYSCALL_DEFINE arguments.
# Removed or never implemented syscalls (create_module, tuxcall, vserver, ...) have none.
FALLBACK_ARGS = {
    "uselib": "const char* library:str",
    "_sysctl": "struct __sysctl_args* args",
    "set_thread_area": "struct user_desc* u_info",
    "get_thread_area": "struct user_desc* u_info",
    "lookup_dcookie": "u64 cookie64, char* buf, size_t len",
    "kexec_load": "unsigned long entry, unsigned long nr_segments, struct kexec_segment* segments, "
                  "unsigned long flags",
    "kexec_file_load": "int kernel_fd, int initrd_fd, unsigned long cmdline_len, const char* cmdline_ptr:str, "
                       "unsigned long flags",
}

# Kernel-internal type spellings -> the userspace ones Tracee prints.
TYPE_RENAMES = [
    (r"\bumode_t\b", "mode_t"), (r"\bunsigned\b(?!\s+(int|long|char|short)\b)", "unsigned int"),
    (r"\b__kernel_old_time_t\b", "time_t"), (r"\bstruct __kernel_timespec\b", "struct timespec"),
    (r"\bstruct __kernel_itimerspec\b", "struct itimerspec"),
    (r"\bstruct __kernel_old_timeval\b", "struct timeval"),
    (r"\bstruct __kernel_old_itimerval\b", "struct itimerval"),
    (r"\bstruct __kernel_timex\b", "struct timex"), (r"\bstruct user_msghdr\b", "struct msghdr"),
    (r"\bstruct new_utsname\b", "struct utsname"),
    (r"\b__s32\b", "int"), (r"\b__u32\b", "u32"), (r"\b__u64\b", "u64"),
]
# (syscall, kernel argument) -> Tracee's type, where the kernel's char pointer is a data buffer.
TYPE_FIXES = {
    ("read", "buf"): "void*", ("write", "buf"): "void*", ("pread64", "buf"): "void*",
    ("pwrite64", "buf"): "const void*", ("getrandom", "ubuf"): "void*",
    ("getsockopt", "optval"): "void*", ("setsockopt", "optval"): "const void*",
    ("shmat", "shmaddr"): "const void*", ("shmdt", "shmaddr"): "const void*", ("ustat", "dev"): "dev_t",
}
# `const char*` kernel arguments that are data, not NUL-terminated strings.
NOT_STRINGS = {("write", "buf"), ("pwrite64", "buf"), ("mq_timedsend", "u_msg_ptr")}
# Plain `char*` kernel arguments that are names or paths.
CHAR_STRINGS = {("utime", "filename"), ("utimes", "filename"), ("sethostname", "name"),
                ("setdomainname", "name"), ("umount2", "name"), ("mount", "dev_name"),
                ("mount", "dir_name"), ("mount", "type")}

S32 = {"int", "pid_t", "key_serial_t", "clockid_t", "timer_t", "mqd_t", "key_t", "rwf_t"}
U32 = {"unsigned int", "u32", "uid_t", "gid_t", "mode_t", "qid_t", "dev_t"}
S64 = {"long", "off_t", "loff_t", "ssize_t", "time_t"}
U64 = {"unsigned long", "size_t", "u64", "aio_context_t", "cap_user_header_t", "cap_user_data_t"}
KIND_SUFFIXES = {"str": "string", "sa": "sockaddr", "argv": "stringArray"}

# Event sets: a syscall is in every set whose pattern matches its whole (Tracee) name.
SET_RULES = [
    ("fs", r"(p?read|p?write)(v|v2|64)?|open(at2?)?|close(_range)?|creat|lseek|ioctl|fcntl|flock|"
           r"(new)?f?stat(at|fs|x)?|lstat|ustat|sysfs|f?statfs|f?truncate|f?sync|fdatasync|syncfs|"
           r"sync_file_range|msync|readahead|fadvise64|fallocate|getdents(64)?|getcwd|f?chdir|chroot|"
           r"pivot_root|rename(at2?)?|mkdir(at)?|rmdir|(sym)?link(at)?|unlink(at)?|readlink(at)?|"
           r"f?chmod(at2?)?|[fl]?chown(at)?|umask|utimes?|utimensat|futimesat|mknod(at)?|"
           r"f?access(at2?)?|faccessat2|dup[23]?|(poll|ppoll|select|pselect6)|epoll_.*|"
           r"[lf]?(set|get|list|remove)xattr(at)?|file_[gs]etattr|swapo(n|ff)|quotactl(_fd)?|"
           r"mount|umount2|move_mount|open_tree(_attr)?|fs(open|config|mount|pick)|mount_setattr|"
           r"(list|stat)mount|io_(setup|destroy|getevents|submit|cancel|pgetevents)|io_uring_.*|"
           r"(inotify|fanotify)_.*|name_to_handle_at|open_by_handle_at|copy_file_range|sendfile|"
           r"lookup_dcookie|nfsservctl|memfd_create|cachestat|landlock_.*|getrandom"),
    ("net", r"socket(pair)?|connect|accept4?|bind|listen|shutdown|get(sock|peer)name|[gs]etsockopt|"
            r"(send|recv)(to|from|msg|mmsg)"),
    ("proc", r"clone3?|v?fork|execve(at)?|exit(_group)?|wait4|waitid|ptrace|arch_prctl|prctl|"
             r"get(e?[ug]id|pid|ppid|tid|pgrp|pgid|sid|groups|res[ug]id|rlimit|rusage|priority)|"
             r"set(e?[ug]id|re[ug]id|res[ug]id|fs[ug]id|pgid|sid|groups|rlimit|priority|ns|_tid_address)|"
             r"prlimit64|times|capget|capset|unshare|kcmp|seccomp|uselib|"
             r"mmap|mprotect|munmap|brk|mremap|mincore|p?madvise|process_(madvise|mrelease|vm_readv|vm_writev)|"
             r"m(un)?lock(2|all)?|munlockall|modify_ldt|remap_file_pages|membarrier|pkey_.*|mseal|"
             r"map_shadow_stack|memfd_secret|userfaultfd|mbind|[gs]et_mempolicy|set_mempolicy_home_node|"
             r"migrate_pages|move_pages|sched_.*|ioprio_[gs]et|[gs]et_thread_area|rseq|pidfd_(open|getfd)|"
             r"landlock_.*|lsm_.*"),
    ("ipc", r"shm(get|at|dt|ctl)|sem(get|op|ctl|timedop)|msg(get|snd|rcv|ctl)|mq_.*|pipe2?|"
            r"eventfd2?|futex(_waitv|_wake|_wait|_requeue)?|[gs]et_robust_list|splice|tee|vmsplice"),
    ("signals", r"kill|tkill|tgkill|rt_sig.*|rt_tgsigqueueinfo|sigaltstack|pause|signalfd4?|"
                r"pidfd_send_signal|restart_syscall"),
    ("time", r"nanosleep|clock_.*|timer_.*|timerfd_.*|[gs]etitimer|alarm|[gs]ettimeofday|time|adjtimex"),
    ("system", r"uname|sysinfo|syslog|reboot|kexec_(file_)?load|(init|finit|delete|create|query)_module|"
               r"get_kernel_syms|bpf|perf_event_open|acct|iopl|ioperm|sysctl|vhangup|add_key|request_key|"
               r"keyctl|personality|sethostname|setdomainname|swapo(n|ff)|quotactl(_fd)?|getcpu|lsm_.*|"
               r"getpmsg|putpmsg|afs|tuxcall|security|vserver|uprobe|uretprobe"),
]
SET_ORDER = ["default", "fs", "net", "proc", "ipc", "signals", "time", "system"]


def parse_unistd(path):
    numbers = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"#define\s+__NR_(\w+)\s+(\d+)\s*$", line)
            if m and int(m.group(2)) < 512:
                numbers[m.group(1)] = int(m.group(2))
    return numbers


def parse_format(path):
    """The (type, name) fields of a sys_enter format after `__syscall_nr`."""
    with open(path) as f:
        text = f.read()
    fields = [m.group(1).strip() for m in re.finditer(r"field:([^;]+);", text)]
    names = [re.match(r"(.*?)(\w+)$", field).group(2) for field in fields]
    start = names.index("__syscall_nr") + 1
    result = []
    for field in fields[start:]:
        m = re.match(r"(.*?)(\w+)$", field)
        result.append((m.group(1).strip(), m.group(2)))
    return result


def normalize_type(ctype):
    t = re.sub(r"\s+", " ", ctype.replace("__user", "")).strip()
    t = re.sub(r"\s*\*\s*", "*", t)
    t = re.sub(r"\*const$", "*", t)  # a by-value pointer's own const says nothing to the reader
    for pattern, replacement in TYPE_RENAMES:
        t = re.sub(pattern, replacement, t)
    return t


def kind_of(ctype, explicit=None):
    if explicit:
        return KIND_SUFFIXES[explicit]
    if "*" in ctype:
        return "u64"
    base = re.sub(r"^const ", "", ctype)
    if base in S32 or base.startswith("enum "):
        return "s32"
    for kinds, kind in ((U32, "u32"), (S64, "s64"), (U64, "u64")):
        if base in kinds:
            return kind
    raise SystemExit(f"generate-syscall-table: no argument kind for C type {ctype!r}")


def parse_spec(spec):
    """Arguments written "TYPE NAME[:kind], ..." -> [(name, type, kind)]."""
    args = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        decl, _, explicit = item.partition(":")
        m = re.match(r"(.*?)(\w+)$", decl.strip())
        ctype = normalize_type(m.group(1))
        args.append((m.group(2), ctype, kind_of(ctype, explicit or None)))
    return args


def kernel_args(syscall, fields):
    """Tracepoint fields -> [(name, type, kind)] with Tracee-style types and string detection."""
    args = []
    for ctype, name in fields:
        t = TYPE_FIXES.get((syscall, name), normalize_type(ctype))
        if name == "fd" and t in ("unsigned int", "unsigned long"):
            t = "int"  # the kernel takes some descriptors unsigned; Tracee (and userspace) say int
        if t == "struct sockaddr*":
            kind = "sockaddr"
        elif t == "const char*const*" and name == "argv":
            kind = "stringArray"
        elif (t == "const char*" and (syscall, name) not in NOT_STRINGS) or (syscall, name) in CHAR_STRINGS:
            kind = "string"
        else:
            kind = kind_of(t)
        args.append((name.lstrip("_") or name, t, kind))
    return args


def classify(name, default):
    sets = {"default"} if default else set()
    for set_name, pattern in SET_RULES:
        if re.fullmatch(pattern, name):
            sets.add(set_name)
    if not sets - {"default"}:
        raise SystemExit(f"generate-syscall-table: no event set for syscall {name!r}; extend SET_RULES")
    return [s for s in SET_ORDER if s in sets]


def swift_string(value):
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def build_rows(numbers, syscalls_dir):
    rows, with_tracepoint, missing = [], 0, []
    for syscall, nr in sorted(numbers.items(), key=lambda item: item[1]):
        name = TRACEE_NAMES.get(syscall, syscall)
        tracepoint = os.path.join(syscalls_dir, f"sys_enter_{TRACEPOINT_ALIASES.get(syscall, syscall)}", "format")
        fields = parse_format(tracepoint) if os.path.exists(tracepoint) else None
        if fields is not None:
            with_tracepoint += 1
        else:
            missing.append(syscall)
        if name in TRACEE_DEFAULT_ARGS:
            args = parse_spec(TRACEE_DEFAULT_ARGS[name])
            if fields is not None and len(args) - COUNT_DIFFERENCES.get(name, 0) != len(fields):
                raise SystemExit(f"generate-syscall-table: {name}: Tracee's {len(args)} arguments do not "
                                 f"match the tracepoint's {len(fields)}")
        elif fields is not None:
            args = kernel_args(syscall, fields)
        else:
            args = parse_spec(FALLBACK_ARGS.get(syscall, ""))
        sets = classify(name, name in TRACEE_DEFAULT_ARGS)
        rendered = ", ".join(f"EventArgument({swift_string(a)}, {swift_string(t)}, .{k})" for a, t, k in args)
        rows.append(f"        .syscall({nr}, {swift_string(name)}, [{', '.join('.' + s for s in sets)}], "
                    f"[{rendered}]),")
    unused = set(TRACEE_DEFAULT_ARGS) - {TRACEE_NAMES.get(s, s) for s in numbers}
    if unused:
        raise SystemExit(f"generate-syscall-table: default events not in unistd_64.h: {sorted(unused)}")
    return rows, with_tracepoint, missing


HEADER = """\
// Generated by Scripts/generators/generate-syscall-table.py from the kernel's syscall tracepoint formats and
// asm/unistd_64.h, with Tracee's argument names and types for its default events. Do not edit.

extension EventTable {
"""
# One array literal of every row takes Swift ~10 s to type-check; parts of 25 take well under 1 s.
PART_SIZE = 25


def render(rows):
    parts = [rows[i:i + PART_SIZE] for i in range(0, len(rows), PART_SIZE)]
    names = [f"syscallsPart{i}" for i in range(len(parts))]
    out = [HEADER.rstrip("\n"),
           "    /// Every x86_64 syscall, indexed by nothing: `id` is the syscall number.",
           "    static let syscallDefinitions: [EventDefinition] = [",
           *textwrap.wrap(", ".join(names) + ",", 100, initial_indent=" " * 8, subsequent_indent=" " * 8),
           "    ].flatMap { $0 }"]
    for name, part in zip(names, parts):
        out += ["", f"    private static let {name}: [EventDefinition] = ["] + part + ["    ]"]
    return "\n".join(out + ["}", ""])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--unistd", default="/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    parser.add_argument("--tracing", default="/sys/kernel/tracing")
    parser.add_argument("--output", default=DEFAULT_OUTPUT)
    options = parser.parse_args()

    syscalls_dir = os.path.join(options.tracing, "events", "syscalls")
    if not os.path.isdir(syscalls_dir):
        raise SystemExit(f"generate-syscall-table: {syscalls_dir} not found; mount tracefs first "
                         f"(mount -t tracefs nodev {options.tracing}) on a kernel with CONFIG_FTRACE_SYSCALLS")
    numbers = parse_unistd(options.unistd)
    rows, with_tracepoint, missing = build_rows(numbers, syscalls_dir)
    with open(options.output, "w") as f:
        f.write(render(rows))
    print(f"{options.output}: {len(rows)} syscalls, {with_tracepoint} from tracepoints; "
          f"no tracepoint: {', '.join(missing) or 'none'}", file=sys.stderr)


if __name__ == "__main__":
    main()
