/// Container escapes and kernel-level persistence, played as root in the FHIR container. Each
/// command's exit status is the attack's own (`Play.container(judged: true)`): 0 when the
/// syscall that matters succeeded, the errno it printed otherwise, so the matrix can say
/// "blocked (EPERM)" or "succeeded".
///
/// Which of them privileges change was checked on this VM (kernel 6.18, cgroup v1, no
/// AppArmor) in a container with `--cap-add SYS_ADMIN --security-opt seccomp=unconfined`:
///
/// - unshare, setns: refused by Docker's seccomp profile (CAP_SYS_ADMIN-gated); succeed with it.
/// - release_agent: mounting a cgroup v1 hierarchy needs CAP_SYS_ADMIN; with it the write succeeds.
/// - core_pattern: /proc/sys is read-only, but CAP_SYS_ADMIN can remount it read-write.
/// - device mount: the same with or without: the devices cgroup refuses to open a block device
///   (EPERM even after mknod), and /dev has no disk node in the first place.
/// - kernel module: init_module needs CAP_SYS_MODULE, not SYS_ADMIN (and this kernel has no
///   module support at all: ENOSYS once seccomp lets the call through).
/// - sysrq: this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ off); elsewhere it is a
///   read-only mount in every container.
/// - docker socket: not mounted, so absent either way.
///
/// The privileged variants are made harmless for the host: release_agent is written only in a
/// private named hierarchy that the scenario mounts and unmounts (no cgroup is ever created in
/// it, so the agent can never run), and core_pattern is written with the value it already has.
/// `AttackLab.hostSettings()` is read before and after each and the lab restores anything that
/// changed (and says so in the matrix).
extension AttackScenario {
    static let escapes: [AttackScenario] = [
        .init(
            "device-mount", "Host device mount", tactic: "privilege-escalation", technique: "T1611",
            expects: ["CAD-023"],
            guards: ["mount", "openat"],
            command: """
                mkdir -p /tmp/lab-mnt
                if mount -o ro /dev/sda1 /tmp/lab-mnt; then umount /tmp/lab-mnt; s=0; else s=1; fi
                rmdir /tmp/lab-mnt; exit $s
                """,
            play: .container(judged: true)),
        .init(
            "docker-socket", "Docker socket", tactic: "privilege-escalation", technique: "T1611", expects: ["CAD-028"],
            guards: ["connect"],
            command:
                #"out=$(behave docker-sock); echo "$out"; case "$out" in *"connect(/var/run/docker.sock) = 0"*) exit 0;; esac; exit 1"#,
            play: .container(judged: true)),
        .init(
            "setns", "Namespace entered (setns)", tactic: "privilege-escalation", technique: "T1611",
            expects: ["CAD-029"],
            guards: ["setns", "openat"],
            command: #"out=$(behave setns); echo "$out"; case "$out" in *"setns(fd, 0) = 0"*) exit 0;; esac; exit 1"#,
            play: .container(judged: true), hasPrivilegedVariant: true),
        .init(
            "unshare", "Namespace created (unshare)", tactic: "privilege-escalation", technique: "T1611",
            expects: ["CAD-030"], guards: ["unshare"],
            command: "unshare -m true", play: .container(judged: true), hasPrivilegedVariant: true),
        // The classic escape mounts a hierarchy with a controller (rdma, memory), whose
        // release_agent is the host's own: a named hierarchy of the lab's is a new one, private
        // to this scenario, and shows the same capability without touching the host's. Refused
        // the mount, it tries the container's read-only view of a hierarchy (not /sys/fs/cgroup
        // itself: a writable tmpfs in some containers, where the write would only create a file).
        .init(
            "release-agent", "cgroup release_agent written", tactic: "privilege-escalation", technique: "T1611",
            expects: ["CAD-024"],
            guards: ["mount", "openat"],
            command: """
                mkdir -p /tmp/lab-cg
                if mount -t cgroup -o none,name=caduceus-lab cgroup /tmp/lab-cg; then
                  echo /tmp/lab > /tmp/lab-cg/release_agent; s=$?; umount /tmp/lab-cg
                else
                  echo /tmp/lab > /sys/fs/cgroup/pids/release_agent; s=$?
                fi
                rmdir /tmp/lab-cg; exit $s
                """,
            note: "written in a private cgroup hierarchy the scenario mounts and removes, never the host's",
            play: .container(judged: true), hasPrivilegedVariant: true),
        // A pipe handler in core_pattern runs as root on the host at the next crash: writing the
        // value that is already there proves the write goes through and changes nothing.
        .init(
            "core-pattern", "core_pattern written", tactic: "privilege-escalation", technique: "T1611",
            expects: ["CAD-026"],
            guards: ["mount", "openat"],
            command: """
                v=$(cat /proc/sys/kernel/core_pattern)
                mount -o remount,rw /proc/sys
                printf '%s\\n' "$v" > /proc/sys/kernel/core_pattern; s=$?
                mount -o remount,ro /proc/sys 2>/dev/null; exit $s
                """,
            note: "writes back the value core_pattern already has: the host's setting never changes",
            play: .container(judged: true), hasPrivilegedVariant: true),
        .init(
            "kernel-module", "Kernel module load", tactic: "persistence", technique: "T1547.006", expects: ["CAD-022"],
            guards: ["init_module", "finit_module"],
            command:
                #"echo lab > /tmp/lab.ko; out=$(behave init-module /tmp/lab.ko); echo "$out"; rm -f /tmp/lab.ko; case "$out" in *"init_module"*") = 0"*) exit 0;; esac; exit 1"#,
            note: "the module is four bytes of text: init_module could only refuse it",
            play: .container(judged: true)),
        .init(
            "sysrq", "SysRq trigger", tactic: "impact", technique: "T1529", expects: ["CAD-027"], guards: ["openat"],
            command: "echo h > /proc/sysrq-trigger", play: .container(judged: true)),
    ]
}
