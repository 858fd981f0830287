// SensorBPF is a C module so that Swift imports the event structs of sensor.h with
// the host compiler's layout; sensor.bpf.c (excluded here) is compiled for the BPF
// target by Plugins/BPFCompilerPlugin. The tables below are the host's side of the
// comparison EventLayoutTests makes for every shared struct (named sensor_*) and enum.
#include "sensor.h"
#include "sensor_layout.h"

#define STRUCT(s) {#s, sizeof(struct s)}
#define MEMBER(s, m) {#s, #m, offsetof(struct s, m), sizeof(((struct s *)0)->m)}
#define ENUMERATOR(e, c) {#e, #c, c}
#define COUNT(table) (sizeof(table) / sizeof((table)[0]))

static const struct sensor_layout_struct structs[] = {
    STRUCT(sensor_syscall_rule), STRUCT(sensor_config), STRUCT(sensor_event_header),
    STRUCT(sensor_kill_pattern), STRUCT(sensor_arg_header), STRUCT(sensor_stats),
};

static const struct sensor_layout_member members[] = {
    MEMBER(sensor_syscall_rule, flags), MEMBER(sensor_syscall_rule, reserved), MEMBER(sensor_syscall_rule, kinds),

    MEMBER(sensor_config, scope), MEMBER(sensor_config, filters), MEMBER(sensor_config, events),
    MEMBER(sensor_config, host_mnt_ns), MEMBER(sensor_config, sensor_tgid), MEMBER(sensor_config, cgroup_v1),
    MEMBER(sensor_config, cgroup_v1_subsys), MEMBER(sensor_config, lsm), MEMBER(sensor_config, wakeup_bytes),
    MEMBER(sensor_config, kill_patterns), MEMBER(sensor_config, kill_cgroups), MEMBER(sensor_config, exec_allow),
    MEMBER(sensor_config, cgroup_deny), MEMBER(sensor_config, filter_cgroup_count), MEMBER(sensor_config, filter_cgroups),
    MEMBER(sensor_config, syscalls),

    MEMBER(sensor_event_header, timestamp), MEMBER(sensor_event_header, cgroup_id), MEMBER(sensor_event_header, return_value),
    MEMBER(sensor_event_header, event_id), MEMBER(sensor_event_header, host_pid), MEMBER(sensor_event_header, host_tid),
    MEMBER(sensor_event_header, host_ppid), MEMBER(sensor_event_header, pid), MEMBER(sensor_event_header, tid),
    MEMBER(sensor_event_header, ppid), MEMBER(sensor_event_header, uid), MEMBER(sensor_event_header, mnt_ns),
    MEMBER(sensor_event_header, pid_ns), MEMBER(sensor_event_header, size), MEMBER(sensor_event_header, argc),
    MEMBER(sensor_event_header, cpu), MEMBER(sensor_event_header, flags), MEMBER(sensor_event_header, comm),
    MEMBER(sensor_event_header, uts_name),

    MEMBER(sensor_kill_pattern, nr), MEMBER(sensor_kill_pattern, kind), MEMBER(sensor_kill_pattern, flags),
    MEMBER(sensor_kill_pattern, length), MEMBER(sensor_kill_pattern, rule), MEMBER(sensor_kill_pattern, text),

    MEMBER(sensor_arg_header, index), MEMBER(sensor_arg_header, kind), MEMBER(sensor_arg_header, length),

    MEMBER(sensor_stats, submitted), MEMBER(sensor_stats, lost),
};

static const struct sensor_layout_enumerator enumerators[] = {
    ENUMERATOR(sensor_arg_kind, SENSOR_ARG_NONE), ENUMERATOR(sensor_arg_kind, SENSOR_ARG_S32),
    ENUMERATOR(sensor_arg_kind, SENSOR_ARG_U32), ENUMERATOR(sensor_arg_kind, SENSOR_ARG_S64),
    ENUMERATOR(sensor_arg_kind, SENSOR_ARG_U64), ENUMERATOR(sensor_arg_kind, SENSOR_ARG_STR),
    ENUMERATOR(sensor_arg_kind, SENSOR_ARG_SOCKADDR), ENUMERATOR(sensor_arg_kind, SENSOR_ARG_STRARR),

    ENUMERATOR(sensor_scope, SENSOR_SCOPE_ALL), ENUMERATOR(sensor_scope, SENSOR_SCOPE_HOST),
    ENUMERATOR(sensor_scope, SENSOR_SCOPE_CONTAINERS), ENUMERATOR(sensor_scope, SENSOR_SCOPE_NEW_CONTAINERS),

    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SCHED_PROCESS_FORK), ENUMERATOR(sensor_event_id, SENSOR_EVENT_SCHED_PROCESS_EXEC),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SCHED_PROCESS_EXIT), ENUMERATOR(sensor_event_id, SENSOR_EVENT_CAP_CAPABLE),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_BPRM_CHECK), ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_FILE_OPEN),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_INODE_UNLINK), ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SOCKET_CREATE),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SOCKET_LISTEN), ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SOCKET_CONNECT),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SOCKET_ACCEPT), ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SOCKET_BIND),
    ENUMERATOR(sensor_event_id, SENSOR_EVENT_SECURITY_SB_MOUNT),

    ENUMERATOR(sensor_kill_kind, SENSOR_KILL_SYSCALL), ENUMERATOR(sensor_kill_kind, SENSOR_KILL_OPEN_PATH),
    ENUMERATOR(sensor_kill_kind, SENSOR_KILL_EXEC_PATH), ENUMERATOR(sensor_kill_kind, SENSOR_KILL_EXEC_NAME),
    ENUMERATOR(sensor_kill_kind, SENSOR_KILL_CONNECT_ADDR),
};

const struct sensor_layout_struct *sensor_layout_struct_at(size_t index) { return index < COUNT(structs) ? &structs[index] : NULL; }
const struct sensor_layout_member *sensor_layout_member_at(size_t index) { return index < COUNT(members) ? &members[index] : NULL; }
const struct sensor_layout_enumerator *sensor_layout_enumerator_at(size_t index) {
    return index < COUNT(enumerators) ? &enumerators[index] : NULL;
}
