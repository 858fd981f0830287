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
struct signal_struct { struct tty_struct *tty; };

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
