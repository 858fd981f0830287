import Foundation
import Sensor

/// The fields Falco's own rule files read beyond the core set: computed, like the others,
/// only when a rule asks, from the event, its process record and its container's metadata.
extension EventView {
    func computeFalcoField(_ field: CompiledField) -> FieldValue? {
        switch field.kind {
        case .eventNumber: return .number(Int64(clamping: number))
        case .eventArgs: return .string(argumentsText())
        case .eventBuffer: return nil  // no I/O buffer is captured
        case .processParentExe:
            return state.ancestor(of: process, level: 1).map { .string($0.argv.first ?? $0.name) }
        case .ancestorExe:
            return ancestorsValue(field.level) { $0.argv.first ?? $0.name }
        case .ancestorExePath:
            return ancestorsValue(field.level) { $0.exePath }
        case .processCwd: return process.cwd.isEmpty ? nil : .string(process.cwd)
        case .processDuration:
            guard process.startTime > 0, event.pointee.timestamp >= process.startTime else { return nil }
            return .number(Int64(clamping: event.pointee.timestamp - process.startTime))
        case .processExeCtime: return process.exeCtime.map { .number(Int64(clamping: $0)) }
        case .processExeMtime: return process.exeMtime.map { .number(Int64(clamping: $0)) }
        case .processExeCtimeSinceStart:
            guard let ctime = process.exeCtime, process.startTime >= ctime else { return nil }
            return .number(Int64(clamping: process.startTime - ctime))
        case .processExeFromMemfd:
            return .string(Self.isMemfd(process.exePath) ? "true" : "false")
        case .processVpgid: return process.vpgid.map { .number($0) }
        case .processIsVpgidLeader:
            return process.vpgid.map { .string($0 == Int64(event.pointee.processId) ? "true" : "false") }
        case .processSid: return process.sid.map { .number($0) }
        case .processIsSidLeader:
            return process.sid.map { .string($0 == Int64(event.pointee.processId) ? "true" : "false") }
        case .processSessionName: return leader(process.sid, \.sid).map { .string($0.name) }
        case .processSessionExe: return leader(process.sid, \.sid).map { .string($0.argv.first ?? $0.name) }
        case .processSessionExePath: return leader(process.sid, \.sid).map { .string($0.exePath) }
        case .processGroupLeaderName: return leader(process.vpgid, \.vpgid).map { .string($0.name) }
        case .processGroupLeaderExe: return leader(process.vpgid, \.vpgid).map { .string($0.argv.first ?? $0.name) }
        case .processGroupLeaderExePath: return leader(process.vpgid, \.vpgid).map { .string($0.exePath) }
        case .processParentVpid: return state.ancestor(of: process, level: 1).map { .number(Int64($0.vpid)) }
        case .eventHostname: return .string(event.pointee.hostName)
        case .fdTypes:
            if field.level >= 0 {
                return process.descriptors[Int32(clamping: field.level)].map { .list([$0.kind.rawValue]) }
            }
            var kinds: [String] = []
            for descriptor in process.descriptors.values where !kinds.contains(descriptor.kind.rawValue) {
                kinds.append(descriptor.kind.rawValue)
            }
            return .list(kinds)
        case .threadCapPermitted: return process.capPermitted.map { .string(Self.capabilityNames($0)) }
        case .threadCapEffective: return process.capEffective.map { .string(Self.capabilityNames($0)) }
        case .userLoginUid: return .number(process.loginUid == .max ? -1 : Int64(process.loginUid))
        case .userLoginName:
            guard process.loginUid != .max else { return nil }
            return state.userName(uid: process.loginUid, process: process).map { .string($0) }
        case .groupId: return .number(Int64(process.gid))
        case .groupName: return state.groupName(gid: process.gid, process: process).map { .string($0) }
        case .fdIP, .fdNet:
            guard let d = descriptor.descriptor else { return nil }
            let ips = [d.clientIP, d.serverIP].compactMap { $0 }
            return ips.isEmpty ? nil : .list(ips)
        case .fdPort:
            guard let d = descriptor.descriptor else { return nil }
            let ports = [d.clientPort, d.serverPort].compactMap { $0 }.map(String.init)
            return ports.isEmpty ? nil : .list(ports)
        case .fdClientNet: return descriptor.descriptor?.clientIP.map { .string($0) }
        case .fdServerNet: return descriptor.descriptor?.serverIP.map { .string($0) }
        case .fdLocalNet: return descriptor.descriptor?.localIP.map { .string($0) }
        case .fdRemoteNet: return descriptor.descriptor?.remoteIP.map { .string($0) }
        case .fdConnected:
            guard let d = descriptor.descriptor, d.kind == .ipv4 || d.kind == .ipv6 else { return nil }
            return .string(storedDescriptor?.remoteIP != nil ? "true" : "false")
        case .fdNameChanged:
            guard let d = descriptor.descriptor else { return nil }
            return .string(storedDescriptor.map { $0.name != d.name } ?? false ? "true" : "false")
        case .fdNameRaw:
            if case .open = facts.action, let given = argumentValue("pathname")?.string {
                return .string(Self.collapsingSlashes(given))
            }
            return descriptor.descriptor.map { .string($0.name) }
        case .fdClientIPName, .fdServerIPName, .fdLocalIPName, .fdRemoteIPName:
            return nil  // no DNS cache is kept
        case .containerPrivileged:
            return event.pointee.container?.privileged.map { .string($0 ? "true" : "false") }
        case .containerStartTime: return event.pointee.container?.startTime.map { .number(Int64(clamping: $0)) }
        case .containerMounts:
            return event.pointee.container.map { info in
                .string(
                    info.mounts.map {
                        "\($0.source):\($0.destination):\($0.mode):\($0.readWrite ? "true" : "false"):\($0.propagation)"
                    }
                    .joined(separator: ","))
            }
        case .containerMountDest:
            guard let info = event.pointee.container, let pattern = field.argument else { return nil }
            let mount = info.mounts.first { fnmatch(pattern, $0.source, 0) == 0 }
            return .string(mount?.destination ?? "N/A")
        case .k8sNamespace: return event.pointee.container?.podNamespace.map { .string($0) }
        case .k8sPod: return event.pointee.container?.podName.map { .string($0) }
        default: return nil
        }
    }

    /// `proc.aexe[N]` (0 is the process itself) or, without an index, every ancestor's.
    private func ancestorsValue(_ level: Int, _ read: (ProcessRecord) -> String) -> FieldValue? {
        if level >= 0 { return state.ancestor(of: process, level: level).map { .string(read($0)) } }
        return .list(state.ancestors(of: process).map(read))
    }

    /// The leader of the process's session (`\.sid`) or process group (`\.vpgid`): the process
    /// or ancestor whose vpid is the id, else the eldest ancestor still sharing it, as Falco
    /// finds it.
    private func leader(_ id: Int64?, _ key: KeyPath<ProcessRecord, Int64?>) -> ProcessRecord? {
        guard let id else { return nil }
        if Int64(process.vpid) == id { return process }
        var eldest = process
        for ancestor in state.ancestors(of: process) {
            guard ancestor[keyPath: key] == id else { break }
            if Int64(ancestor.vpid) == id { return ancestor }
            eldest = ancestor
        }
        return eldest
    }

    /// Falco's `evt.args`: `name=value` for each argument, names for flags the table knows.
    private func argumentsText() -> String {
        var parts: [String] = []
        for argument in event.pointee.args {
            let shown = self.argument(argument.name)?.text ?? ""
            parts.append(argument.name + "=" + String(decoding: shown.utf8.prefix(4096), as: UTF8.self))
        }
        return parts.joined(separator: " ")
    }

    static func isMemfd(_ path: String) -> Bool {
        path.hasPrefix("/memfd:") || path.hasPrefix("memfd:")
    }

    static func collapsingSlashes(_ path: String) -> String {
        guard path.contains("//") else { return path }
        var result = ""
        var previousSlash = false
        for character in path {
            if character == "/" && previousSlash { continue }
            previousSlash = character == "/"
            result.append(character)
        }
        return result
    }

    /// A capability mask as Falco prints it: the names of its bits, space-separated.
    static func capabilityNames(_ mask: UInt64) -> String {
        var names: [String] = []
        for bit in 0..<64 where mask & (1 << UInt64(bit)) != 0 {
            names.append(ArgumentSymbols.capabilities[Int64(bit)] ?? "CAP_\(bit)")
        }
        return names.joined(separator: " ")
    }
}
