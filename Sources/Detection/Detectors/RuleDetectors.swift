import Sensor

/// Rules whose single-event condition only selects candidates, and whose alert needs a count or
/// a pair across events (a port scan, a decoder piped into a shell): the rule's matches go to a
/// stateful detector named by the rule's id, and the alert is raised only when the detector says
/// so, with its note appended to the output. Each detector is bounded in memory and keeps time by
/// the events' own timestamps, so a replay gives the alerts the live run gave.
final class RuleDetectors {
    /// A detector's answer for one match: nil to stay quiet, or the note the alert carries
    /// (empty: none).
    typealias Gate = (EventView) -> String?

    private var gates: [String: Gate] = [:]

    init() {
        let scan = PortScanDetector()
        gates[PortScanDetector.ruleId] = { view in
            let event = view.event.pointee
            guard let port = view.descriptor.descriptor?.remotePort else { return nil }
            return scan.observe(
                container: event.containerId, port: port,
                // ECONNREFUSED, or EINPROGRESS (a non-blocking connect: its refusal comes later).
                refused: event.returnValue == -111 || event.returnValue == -115, time: event.timestamp)
        }
        let pipe = DecodedPayloadShellDetector()
        gates[DecodedPayloadShellDetector.ruleId] = { view in
            let event = view.event.pointee
            let exited = view.type == "sched_process_exit"
            // A thread's exit is not its process's.
            if exited && event.hostThreadId != event.hostProcessId { return nil }
            let note = pipe.observe(
                container: event.containerId, parent: view.process.ppid, pid: view.process.pid, name: view.process.name,
                forked: view.process.startTime, time: event.timestamp, exited: exited, byNameOnly: view.type == "prctl",
                parentCommandLine: exited ? "" : view.state.ancestor(of: view.process, level: 1)?.cmdline ?? "")
            return exited ? nil : note
        }
        gates[OwnProcessPathFilter.ruleId] = { view in
            let event = view.event.pointee
            let path = view.argumentValue("pathname")?.string ?? ""
            let ids = [event.processId, event.threadId, event.hostProcessId, event.hostThreadId]
            return OwnProcessPathFilter.isOwn(path, ids: ids) ? nil : ""
        }
    }

    /// The gate of the rule with this id, if a detector counts its matches.
    func gate(_ ruleId: String) -> Gate? { gates.isEmpty ? nil : gates[ruleId] }
}
