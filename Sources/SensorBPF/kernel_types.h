// Minimal views of the kernel structs the sensor reads. Only field names and
// types matter: `preserve_access_index` makes clang record every access as a
// CO-RE relocation, and libbpf rewrites the offsets from the running kernel's
// BTF (/sys/kernel/btf/vmlinux) at load time. This replaces a generated
// vmlinux.h, which would be megabytes and tied to one kernel build.
#ifndef CADUCEUS_KERNEL_TYPES_H
#define CADUCEUS_KERNEL_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>

typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __u64 u64;
typedef __s32 s32;
typedef __s64 s64;


#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
    unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
    unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct qstr {
    union {
        struct {
            u32 hash;
            u32 len;
        };
        u64 hash_len;
    };
    const unsigned char *name;
};

struct super_block { u32 s_dev; };
struct inode { unsigned long i_ino; unsigned short i_mode; struct super_block *i_sb; };
// An inode's ctime and mtime as kernels have stored them (CO-RE flavours of struct inode; the
// ___suffix is dropped when libbpf matches them): seconds and nanoseconds apart since 6.11,
// timespec64 fields renamed __i_ctime in 6.6 and __i_mtime in 6.7, plain timespec64 before.
struct timespec64 { s64 tv_sec; long tv_nsec; };
struct inode___split { s64 i_mtime_sec; s64 i_ctime_sec; u32 i_mtime_nsec; u32 i_ctime_nsec; };
struct inode___hidden { struct timespec64 __i_mtime; struct timespec64 __i_ctime; };
struct inode___hidden_ctime { struct timespec64 i_mtime; struct timespec64 __i_ctime; };
struct inode___timespec { struct timespec64 i_mtime; struct timespec64 i_ctime; };
struct dentry { struct dentry *d_parent; struct qstr d_name; struct inode *d_inode; };
struct vfsmount { struct dentry *mnt_root; };
struct mount { struct mount *mnt_parent; struct dentry *mnt_mountpoint; struct vfsmount mnt; };
struct path { struct vfsmount *mnt; struct dentry *dentry; };
struct file { struct path f_path; struct inode *f_inode; unsigned int f_flags; void *private_data; };
struct fdtable { unsigned int max_fds; struct file **fd; };
struct files_struct { struct fdtable *fdt; };
struct fs_struct { struct path root; struct path pwd; };

struct ns_common { unsigned int inum; };
struct mnt_namespace { struct ns_common ns; };
struct pid_namespace { unsigned int level; struct ns_common ns; };
struct new_utsname { char nodename[65]; };
struct uts_namespace { struct new_utsname name; };
struct nsproxy {
    struct uts_namespace *uts_ns;
    struct mnt_namespace *mnt_ns;
    struct pid_namespace *pid_ns_for_children;
};
struct upid { int nr; struct pid_namespace *ns; };
struct pid { unsigned int level; struct upid numbers[1]; };

struct kernfs_node { u64 id; };
struct cgroup { struct kernfs_node *kn; };
struct cgroup_subsys_state { struct cgroup *cgroup; };
struct css_set { struct cgroup_subsys_state *subsys[16]; };

struct mm_struct { unsigned long arg_start; unsigned long arg_end; };

struct tty_driver { int major; int minor_start; };
struct tty_struct { struct tty_driver *driver; int index; };
// pids[] is indexed by enum pid_type: PIDTYPE_PGID = 2, PIDTYPE_SID = 3.
struct signal_struct { struct tty_struct *tty; struct pid *pids[4]; };

typedef struct { u32 val; } kuid_t;
typedef struct { u32 val; } kgid_t;
// kernel_cap_t is one u64 since 6.3 and two u32 (low word first) before: read as 8 bytes either way.
typedef struct { u64 val; } kernel_cap_t;
struct cred { kuid_t uid; kgid_t gid; kuid_t euid; kgid_t egid; kernel_cap_t cap_permitted; kernel_cap_t cap_effective; };

struct task_struct {
    int pid;
    int tgid;
    int exit_code;
    char comm[16];
    struct task_struct *real_parent;
    struct task_struct *group_leader;
    struct pid *thread_pid;
    struct nsproxy *nsproxy;
    struct files_struct *files;
    struct fs_struct *fs;
    struct mm_struct *mm;
    struct css_set *cgroups;
    struct signal_struct *signal;
    const struct cred *cred;
    kuid_t loginuid;  // CONFIG_AUDIT only
};

struct linux_binprm { struct file *file; const char *filename; const char *interp; };

struct in6_addr { u8 s6_addr[16]; };
struct sock_common {
    u32 skc_rcv_saddr;
    u16 skc_num;
    unsigned short skc_family;
    struct in6_addr skc_v6_rcv_saddr;
};
struct sock { struct sock_common __sk_common; };
struct socket { struct sock *sk; };

#pragma clang attribute pop

#endif
