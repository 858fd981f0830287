import SensorBPF
import Testing

@testable import Sensor

/// The plan of programs to load, without the kernel: what each configuration costs and which
/// mechanism the kernel is given, checked without root.
@Suite struct SensorLoadPlanTests {
    static func plan(events: Set<Int32> = [257], kills: [KillPattern] = [], lsm: Bool = false, cgroup: Bool = true)
        -> SensorLoadPlan
    {
        var configuration = SensorConfiguration()
        configuration.events = EventSelection(ids: events)
        configuration.killPatterns = kills
        return SensorLoadPlan(
            configuration: configuration, config: sensor_config(), useLSM: lsm, refusesInCgroup: cgroup)
    }

    @Test func tracingOnlyLoadsNoEnforcementProgram() {
        let plan = Self.plan()
        #expect(plan.programs.contains("on_sys_exit"))
        #expect(!plan.programs.contains("on_sys_enter_enforce") && plan.cgroupPrograms.isEmpty)
        #expect(plan.config.cgroup_deny == 0 && plan.config.lsm == 0)
    }

    /// A refused socket call needs no kill at its entry; without the cgroup programs it gets one.
    @Test func socketPatternsGoToTheCgroupProgramsOrToTheKillAtEntry() throws {
        let connect = try #require(KillPattern.connect(to: "127.0.0.7", containersOnly: true))
        let refused = Self.plan(kills: [connect])
        #expect(refused.cgroupPrograms == ["cgroup_connect4", "cgroup_connect6"])
        #expect(refused.programs.isSuperset(of: ["cgroup_connect4", "cgroup_connect6"]))
        #expect(!refused.programs.contains("on_sys_enter_enforce") && !refused.enforces(syscall: 42))
        #expect(refused.config.cgroup_deny == 1 && refused.kills.allSatisfy(\.refusedInCgroup))

        let killed = Self.plan(kills: [connect], cgroup: false)
        #expect(killed.cgroupPrograms.isEmpty && killed.config.cgroup_deny == 0)
        #expect(killed.programs.contains("on_sys_enter_enforce") && killed.enforces(syscall: 42))
        #expect(killed.kills.allSatisfy { !$0.refusedInCgroup })
    }

    /// Any connect: IPv4/IPv6 refused in the cgroup, other families still killed at entry.
    @Test func anyCallPatternKeepsItsKillForOtherFamilies() {
        let plan = Self.plan(kills: [KillPattern(kind: .syscall, syscall: 42, containersOnly: true)])
        #expect(!plan.cgroupPrograms.isEmpty && plan.enforces(syscall: 42))
    }

    @Test func openAndExecPatterns() {
        let open = Self.plan(kills: [KillPattern(kind: .openPath, syscall: 257, text: "/tmp/victim")])
        #expect(
            open.enforces(syscall: 257) && open.cgroupPrograms.isEmpty
                && !open.programs.contains("on_sched_process_exec"))
        let exec = Self.plan(events: [], kills: [KillPattern(kind: .execPath, text: "/tmp/drop")])
        #expect(exec.programs.contains("on_sched_process_exec") && !exec.programs.contains("on_sys_enter_enforce"))
    }

    /// Security events come from LSM hooks where allowed, else are derived from syscalls.
    @Test func securityEventsFromLSMOrDerived() {
        let derived = Self.plan(events: [1015])
        #expect(derived.programs.contains("on_sys_exit") && !derived.programs.contains("lsm_file_open"))
        let lsm = Self.plan(events: [1015], lsm: true)
        #expect(lsm.programs.contains("lsm_file_open") && !lsm.programs.contains("on_sys_exit") && lsm.config.lsm == 1)
    }
}
