import Foundation

/// Asks the Docker Engine API over its unix socket for a container's name and image.
/// Used once per container (answers are cached by the caller); any failure means
/// "no engine answer", never an error in the trace.
struct DockerEngineClient {
    var socketPath = "/var/run/docker.sock"

    func inspect(_ reference: String) -> ContainerInfo? {
        guard reference.allSatisfy({ $0.isLetter || $0.isNumber || "_.-".contains($0) }),
            let body = get("/containers/\(reference)/json"),
            let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
            let id = object["Id"] as? String
        else { return nil }
        let name = (object["Name"] as? String).map { $0.hasPrefix("/") ? String($0.dropFirst()) : $0 } ?? ""
        let config = object["Config"] as? [String: Any]
        var info = ContainerInfo(
            id: id, name: name, image: config?["Image"] as? String ?? "", imageDigest: object["Image"] as? String ?? "")
        Self.addDetails(object, to: &info)
        return info
    }

    /// Most mounts kept, and the longest string kept, of an engine's answer (which a
    /// container's creator shapes: labels, mount paths).
    static let mountLimit = 64
    static let textLimit = 4096

    /// Privilege, start time, mounts and pod labels from an inspect answer, each bounded;
    /// a field of the wrong type is left unknown.
    static func addDetails(_ object: [String: Any], to info: inout ContainerInfo) {
        func text(_ value: Any?) -> String? {
            (value as? String).map { String(decoding: $0.utf8.prefix(textLimit), as: UTF8.self) }
        }
        let host = object["HostConfig"] as? [String: Any]
        info.privileged = host?["Privileged"] as? Bool
        let state = object["State"] as? [String: Any]
        info.startTime = text(state?["StartedAt"]).flatMap(parseTime) ?? text(object["Created"]).flatMap(parseTime)
        for mount in ((object["Mounts"] as? [Any]) ?? []).prefix(mountLimit) {
            guard let mount = mount as? [String: Any], let source = text(mount["Source"]),
                let destination = text(mount["Destination"])
            else { continue }
            info.mounts.append(
                ContainerInfo.Mount(
                    source: source, destination: destination, mode: text(mount["Mode"]) ?? "",
                    readWrite: mount["RW"] as? Bool ?? true,
                    propagation: text(mount["Propagation"]) ?? ""))
        }
        let labels = (object["Config"] as? [String: Any])?["Labels"] as? [String: Any]
        info.podName = text(labels?["io.kubernetes.pod.name"])
        info.podNamespace = text(labels?["io.kubernetes.pod.namespace"])
    }

    /// RFC 3339 with up to nanoseconds (`2024-05-01T10:00:00.123456789Z`), as ns since the
    /// epoch; nil for Docker's zero time or anything else.
    static func parseTime(_ text: String) -> UInt64? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 40, bytes.last == UInt8(ascii: "Z") else { return nil }
        func number(_ range: Range<Int>) -> Int? { Int(String(decoding: bytes[range], as: UTF8.self)) }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10),
            let hour = number(11..<13), let minute = number(14..<16), let second = number(17..<19), year > 1970
        else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = timegm(&parts)
        guard seconds > 0 else { return nil }
        var fraction: UInt64 = 0
        if bytes[19] == UInt8(ascii: "."), bytes.count > 21 {
            let digits = bytes[20..<(bytes.count - 1)].prefix(9)
            guard digits.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
            fraction =
                UInt64(String(decoding: digits, as: UTF8.self)).map { $0 * UInt64(pow(10.0, Double(9 - digits.count))) }
                ?? 0
        }
        return UInt64(seconds) * 1_000_000_000 + fraction
    }

    /// One HTTP/1.0 GET (so the answer is not chunked); the body when the status is 200.
    func get(_ path: String) -> Data? {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)  // a busy engine (many containers starting) answers late
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard socketPath.utf8.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in socketPath.utf8.enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard connected == 0 else { return nil }
        let request = Array("GET /v1.41\(path) HTTP/1.0\r\nHost: docker\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == request.count else { return nil }
        var response = Data()
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            response.append(contentsOf: chunk[0..<count])
            if response.count > 4 << 20 { return nil }
        }
        guard let headerEnd = response.range(of: Data("\r\n\r\n".utf8)),
            let statusLine = String(data: response[..<headerEnd.lowerBound], encoding: .utf8)?.split(separator: "\r\n")
                .first,
            statusLine.split(separator: " ").dropFirst().first == "200"
        else { return nil }
        return response[headerEnd.upperBound...]
    }
}
