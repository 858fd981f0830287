// SPDX-License-Identifier: GPL-2.0
// Start-up probes: empty programs of the attach types the sensor would prefer for its
// security events. If the kernel loads them, BPF-LSM / fentry are usable here; kernels in
// lockdown (integrity) refuse both with EPERM, and the sensor derives those events from
// syscall tracepoints instead (see README, "Event sources").
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

SEC("lsm/file_open")
int BPF_PROG(probe_lsm, void *file)
{
    return 0;
}

SEC("fentry/security_file_open")
int BPF_PROG(probe_fentry, void *file)
{
    return 0;
}

/// Lets every call through: only whether it loads and attaches to the cgroup v2 root is probed
/// (socket calls are refused by sensor.bpf.c's cgroup programs where it does).
SEC("cgroup/connect4")
int probe_cgroup_connect4(struct bpf_sock_addr *ctx)
{
    return 1;
}
