// Included once by sensor.bpf.c: absolute paths from dentries and mounts, and the
// security_* events derived from syscall results: the source wherever the kernel refuses
// BPF-LSM (this one does, under lockdown); where it loads, sensor.bpf.c's lsm/ programs are.
#ifndef CADUCEUS_SECURITY_EVENTS_BPF_H
#define CADUCEUS_SECURITY_EVENTS_BPF_H

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
        // Nothing above it: the namespace root, or a file that is itself the root of an
        // internal mount (a memfd), which keeps its own name as d_path shows it: /memfd:NAME.
        u32 len = BPF_CORE_READ(dentry, d_name.len) & NAME_MAX_;
        const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
        char first = '/';
        bpf_probe_read_kernel(&first, 1, name);
        if (first != '/' && len > 0) {
            pos -= len;
            bpf_probe_read_kernel(&s->path[pos & PATH_MASK], len, name);
        }
        pos -= 1;
        s->path[pos & PATH_MASK] = '/';
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
static __always_inline void emit_file_open_of(struct task_struct *task, struct file *file)
{
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

static __always_inline void emit_file_open(struct task_struct *task, u32 fd)
{
    struct file *file = file_of_fd(task, fd);
    if (file)
        emit_file_open_of(task, file);
}

/// security_inode_unlink from a successful unlink: an absolute path, joined in the
/// kernel from the directory (dirfd or cwd) and the name the caller passed.
static __always_inline void emit_inode_unlink(struct task_struct *task, int dirfd, const char *name)
{
    struct record r;
    if (!record_begin(&r, task, SENSOR_EVENT_SECURITY_INODE_UNLINK, 0))
        return;
    char first[2] = {};
    bpf_probe_read_user(&first, 2, name);
    if (first[0] == '/') {
        put_user_str(&r, 0, name);
        submit(&r);
        return;
    }
    if (first[0] == '.' && first[1] == '/')
        name += 2;  // `rm ./x` is /dir/x, not /dir/./x (deeper `..` stays as given)
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
    case __NR_open:
    case __NR_openat:
    case __NR_openat2:
    case __NR_creat:
        if (ret >= 0 && WANTS(SENSOR_WANT_FILE_OPEN))
            emit_file_open(task, (u32)ret);
        break;
    case __NR_unlink:
        if (ret == 0 && WANTS(SENSOR_WANT_INODE_UNLINK))
            emit_inode_unlink(task, AT_FDCWD_, (const char *)args[0]);
        break;
    case __NR_unlinkat:
        if (ret == 0 && WANTS(SENSOR_WANT_INODE_UNLINK) && !(args[2] & AT_REMOVEDIR_))
            emit_inode_unlink(task, (s32)args[0], (const char *)args[1]);
        break;
    case __NR_socket:
        if (ret >= 0 && WANTS(SENSOR_WANT_SOCKET_CREATE))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_CREATE, args, ret);
        break;
    case __NR_connect:
        // The LSM hook runs before the protocol's connect: refused or pending connects count.
        if (ret != ERR_BADF && ret != ERR_NOTSOCK && ret != ERR_FAULT && WANTS(SENSOR_WANT_SOCKET_CONNECT))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_CONNECT, args, ret);
        break;
    case __NR_bind:
        if (ret != ERR_BADF && ret != ERR_NOTSOCK && ret != ERR_FAULT && WANTS(SENSOR_WANT_SOCKET_BIND))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_BIND, args, ret);
        break;
    case __NR_listen:
        if (ret == 0 && WANTS(SENSOR_WANT_SOCKET_LISTEN))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_LISTEN, args, ret);
        break;
    case __NR_accept:
    case __NR_accept4:
        if (ret >= 0 && WANTS(SENSOR_WANT_SOCKET_ACCEPT))
            emit_socket_event(task, SENSOR_EVENT_SECURITY_SOCKET_ACCEPT, args, ret);
        break;
    case __NR_mount:
        if (ret != ERR_FAULT && WANTS(SENSOR_WANT_SB_MOUNT))
            emit_sb_mount(task, args);
        break;
    }
}

#endif
