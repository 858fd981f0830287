import Foundation
import Detection
import Sensor
import Yams

/// Builds events the way the sensor would, from short descriptions: the event name, the
/// process, and arguments by name (types come from the sensor's event table). Used by the
/// Swift tests and by the replay of `rules/*.test.yaml`.
struct EventFixture {
    static let containerID = "4f2c1d0e9b8a" + String(repeating: "7", count: 52)

    var type: String
    var pid: UInt32 = 1000
    var tid: UInt32?
    var ppid: UInt32 = 1
    var vpid: UInt32?
    var uid: UInt32 = 0
    var comm: String?
    var container: String? = containerID
    var image: String?
    var ret: Int64 = 0
    var args: [String: Any] = [:]
    var time: UInt64 = 1_764_417_600_000_000_000

    init(
        _ type: String, pid: UInt32 = 1000, ppid: UInt32 = 1, comm: String? = nil, uid: UInt32 = 0, ret: Int64 = 0,
        container: String? = containerID, args: [String: Any] = [:]
    ) {
        self.type = type
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.uid = uid
        self.ret = ret
        self.container = container
        self.args = args
    }

    /// From a YAML mapping of a rule test (`{type: openat, pid: 20, args: {...}}`).
    init(yaml node: Node) throws {
        guard let mapping = node.mapping, let type = mapping["type"]?.string else {
            throw FixtureError("an event needs a type (at line \(node.mark?.line ?? 0))")
        }
        self.type = type
        if let v = mapping["pid"]?.int { pid = UInt32(v) }
        if let v = mapping["tid"]?.int { tid = UInt32(v) }
        if let v = mapping["ppid"]?.int { ppid = UInt32(v) }
        if let v = mapping["vpid"]?.int { vpid = UInt32(v) }
        if let v = mapping["uid"]?.int { uid = UInt32(v) }
        if let v = mapping["ret"]?.int { ret = Int64(v) }
        if let v = mapping["time"]?.int, v > 0 { time = UInt64(v) }
        comm = mapping["comm"]?.string
        if let v = mapping["container"] { container = v.string ?? "" }
        image = mapping["image"]?.string
        for (key, value) in mapping["args"]?.mapping ?? [:] {
            guard let name = key.string else { continue }
            if let list = value.sequence {
                args[name] = list.compactMap(\.string)
            } else if let int = value.int {
                args[name] = int
            } else {
                args[name] = value.string ?? ""
            }
        }
    }

    func event(defaultComm: String = "sh") -> TraceEvent {
        let definition = EventTable.definition(named: type)
        let arguments: [TraceArgument] =
            (definition?.arguments ?? []).compactMap { spec in
                guard let raw = args[spec.name] else { return nil }
                return TraceArgument(name: spec.name, type: spec.type, value: Self.value(raw, spec.type))
            }
            + args.keys.sorted().filter { name in !(definition?.arguments.contains { $0.name == name } ?? false) }.map {
                TraceArgument(name: $0, type: "unknown", value: Self.value(args[$0]!, ""))
            }
        let id = container ?? ""
        return TraceEvent(
            timestamp: time, processId: vpid ?? pid, threadId: vpid ?? tid ?? pid, parentProcessId: ppid,
            hostProcessId: pid,
            hostThreadId: tid ?? pid, hostParentProcessId: ppid, userId: uid, processName: comm ?? defaultComm,
            hostName: "testbox", containerId: id,
            container: id.isEmpty
                ? nil : ContainerInfo(id: id, name: "fixture", image: image ?? "caduceus-testbox:latest"),
            eventId: String(definition?.id ?? 0), eventName: type, returnValue: ret, args: arguments)
    }

    static func value(_ raw: Any, _ type: String) -> ArgumentValue {
        if let list = raw as? [String] { return .strings(list) }
        if let int = raw as? Int { return .int(Int64(int)) }
        let text = raw as? String ?? ""
        guard type.contains("sockaddr") else { return .string(text) }
        if text.hasPrefix("/") {
            return .fields([.init(key: "sa_family", value: "AF_UNIX"), .init(key: "sun_path", value: text)])
        }
        let colon = text.lastIndex(of: ":") ?? text.endIndex
        let host = String(text[..<colon]).trimmingCharacters(in: ["[", "]"])
        let port = colon < text.endIndex ? String(text[text.index(after: colon)...]) : "0"
        if host.contains(":") {
            return .fields([
                .init(key: "sa_family", value: "AF_INET6"), .init(key: "sin6_addr", value: host),
                .init(key: "sin6_port", value: port),
            ])
        }
        return .fields([
            .init(key: "sa_family", value: "AF_INET"), .init(key: "sin_addr", value: host),
            .init(key: "sin_port", value: port),
        ])
    }
}

/// The error loading `files` raises, or nil when they load.
func ruleLoadError(_ files: [(String, String)]) -> RuleError? {
    do {
        _ = try RuleSet.load(files)
        return nil
    } catch let error as RuleError {
        return error
    } catch {
        return nil
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// An engine over rules given as YAML text, fed fixtures; answers which rule ids fired.
struct EngineHarness {
    let engine: DetectionEngine

    init(rules: String, file: String = "test.yaml", processes: [ProcessRecord] = []) throws {
        engine = try DetectionEngine(ruleSet: RuleSet.load([(file, rules)]))
        processes.forEach(engine.state.insert)
    }

    init(ruleSet: RuleSet, processes: [ProcessRecord] = []) throws {
        engine = try DetectionEngine(ruleSet: ruleSet)
        processes.forEach(engine.state.insert)
    }

    /// Alerts raised by the events, in order.
    @discardableResult
    func run(_ fixtures: [EventFixture]) -> [Alert] {
        var alerts: [Alert] = []
        for fixture in fixtures {
            let comm = engine.state.process(pid: fixture.pid)?.name ?? "sh"
            engine.process(fixture.event(defaultComm: comm)) { alerts.append($0) }
        }
        return alerts
    }
}
