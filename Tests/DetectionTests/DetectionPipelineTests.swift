import Detection
import Foundation
import Sensor
import Testing

/// The pipeline's stages in order, over events made as the sensor makes them (no kernel): the
/// ignore list before enforcement, enforcement before the throttle (a throttled alert still
/// acts), the throttle before the outputs, every output given the same alerts.
@Suite struct DetectionPipelineTests {
    static let rules = """
        - rule: Netcat in a container
          id: T-NC
          desc: nc started.
          condition: evt.type = sched_process_exec and proc.name = nc and container.id != host
          output: "nc started (container=%container.name)"
          priority: WARNING
          action: kill
        """

    /// An output that keeps what it is given.
    final class Kept: AlertSink {
        var alerts: [Alert] = []
        var finished = 0
        func write(_ alert: Alert) { alerts.append(alert) }
        func finish() -> [String] {
            finished += 1
            return ["kept \(alerts.count)"]
        }
    }

    static func exec(pid: UInt32, container name: String, id: String) -> TraceEvent {
        var fixture = EventFixture(
            "sched_process_exec", pid: pid, ppid: 1, comm: "nc", container: id,
            args: ["pathname": "/bin/nc", "argv": ["nc"]])
        fixture.image = "box:1"
        var event = fixture.event()
        event.container = ContainerInfo(id: id, name: name, image: "box:1")
        return event
    }

    @Test func alertsPassIgnoreEnforcementThrottleThenEveryOutput() throws {
        let first = Kept(), second = Kept()
        let options = DetectionPipelineOptions(
            enforcement: EnforcementOptions(all: true, dryRun: true), ignoredContainers: ["sensor-box"],
            throttle: (burst: 2, interval: 60),
            readsProcFS: false)
        let pipeline = try DetectionPipeline(
            ruleSet: RuleSet.load([("nc.yaml", Self.rules)]), options: options, outputs: [first, second])
        let watched = String(repeating: "a", count: 64), ignored = String(repeating: "b", count: 64)
        for pid in UInt32(100)..<105 { pipeline.process(Self.exec(pid: pid, container: "web", id: watched)) }
        for pid in UInt32(200)..<203 { pipeline.process(Self.exec(pid: pid, container: "sensor-box", id: ignored)) }

        #expect(pipeline.engine?.statistics.alerts == 8, "the engine raised every match")
        #expect(first.alerts.count == 2, "a burst of 2 per rule and container, the ignored container none")
        #expect(first.alerts.allSatisfy { $0.container.name == "web" && $0.action == "would kill" })
        #expect(
            first.alerts.map(\.process.pid) == second.alerts.map(\.process.pid), "every output gets the same alerts")
        #expect(pipeline.throttle?.suppressed.map(\.count) == [3])
        #expect(pipeline.finish() == ["kept 2", "kept 2"])
        #expect(first.finished == 1 && second.finished == 1)
    }

    @Test func anAlertRaisedOutsideTheEngineComesActedOnAndIsCounted() throws {
        let kept = Kept()
        let pipeline = try DetectionPipeline(
            ruleSet: RuleSet.load([("nc.yaml", Self.rules)]),
            options: DetectionPipelineOptions(enforcement: EnforcementOptions(all: true, dryRun: true)),
            outputs: [kept])
        var refused: Alert?
        pipeline.engine?.process(Self.exec(pid: 300, container: "web", id: String(repeating: "c", count: 64))) {
            refused = $0
        }
        var alert = try #require(refused)
        alert.action = "denied (fanotify)"
        pipeline.raise(alert)
        #expect(pipeline.raisedOutsideTheEngine == 1)
        #expect(kept.alerts.map { $0.action ?? "" } == ["denied (fanotify)"], "its action is kept, not enforced again")
    }

    @Test func aLearningPipelineFeedsTheLearnerAndRaisesNothing() throws {
        let learner = ProfileLearner(containerName: "web")
        let pipeline = DetectionPipeline(learning: learner)
        #expect(pipeline.engine == nil && pipeline.outputs.isEmpty)
        #expect(pipeline.requiredEvents == ProfileLearner.requiredEvents)
        pipeline.process(Self.exec(pid: 400, container: "web", id: String(repeating: "d", count: 64)))
        #expect(learner.profile().executables.contains("/bin/nc"))
    }
}
